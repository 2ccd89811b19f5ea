"""The Harbor client: headers, encoding, paging, retries and error mapping (httpx.MockTransport)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from daemon import errors
from daemon.config_types import RegistryConfig, Secret
from daemon.harbor.client import HarborClient, encode_repository
from daemon.model import ScanState
from daemon.retry import parse_retry_after
from daemon.scan.ratelimit import RegistryLimiter

Handler = Callable[[httpx.Request], httpx.Response]


def registry(max_retries: int = 3) -> RegistryConfig:
    return RegistryConfig(
        name="prod", url="https://harbor.test", username="robot$scanwatch",
        password=Secret("s3cr3t-pw", "literal"), max_retries=max_retries,
        requests_per_second=1000, burst=1000, max_concurrent_requests=8,
    )


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make_client(handler: Handler, max_retries: int = 3) -> tuple[HarborClient, Recorder]:
    rec = Recorder(handler)
    reg = registry(max_retries)
    client = HarborClient(reg, limiter=RegistryLimiter(1000, 1000, 8, sleep=rec.sleep),
                          transport=httpx.MockTransport(rec), sleep=rec.sleep,
                          rng=random.Random(1))
    return client, rec


def artifact_json(digest: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "digest": digest, "type": "IMAGE", "repository_name": "proj/team/app",
        "tags": None, "references": None, "labels": None,
        "addition_links": {"vulnerabilities": {"href": "x"}},
    }
    body.update(extra)
    return body


@pytest.mark.parametrize(
    ("repository", "encoded"),
    [
        pytest.param("app", "app", id="no-slash"),
        pytest.param("team/app", "team%252Fapp", id="slash-double-encoded"),
        pytest.param("proj/team/app", "team%252Fapp", id="project-prefix-stripped"),
        pytest.param("a b", "a%2520b", id="space"),
    ],
)
def test_it_double_encodes_repository_names(repository: str, encoded: str) -> None:
    assert encode_repository("proj", repository) == encoded


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("7", 7.0, id="delta-seconds"),
        pytest.param(None, None, id="absent"),
        pytest.param("soon", None, id="garbage"),
    ],
)
def test_it_reads_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_it_reads_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == 30.0


async def test_it_sends_auth_headers_and_no_cookies() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"harbor_version": "v2.14.0-abc"},
                              headers={"Set-Cookie": "sid=abc123; Path=/"})

    client, rec = make_client(handler)
    async with client:
        await client.system_info()
        await client.trigger_scan("proj", "team/app", "sha256:aa")
    first, second = rec.requests
    assert first.headers["Authorization"].startswith("Basic ")
    assert first.headers["X-Is-Resource-Name"] == "true"
    assert "version=1.1" in first.headers["X-Accept-Vulnerabilities"]
    assert "harbor+json" in first.headers["X-Accept-Vulnerabilities"]
    assert "cookie" not in second.headers
    assert second.url.raw_path.decode().endswith(
        "/projects/proj/repositories/team%252Fapp/artifacts/sha256:aa/scan")
    assert json.loads(second.content) == {"scan_type": "vulnerability"}


async def test_it_pages_by_total_count_and_ignores_link() -> None:
    digests = [f"sha256:{n:064x}" for n in range(250)]

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        assert request.url.params["page_size"] == "100"
        assert request.url.params["with_scan_overview"] == "true"
        chunk = digests[(page - 1) * 100: page * 100]
        return httpx.Response(200, json=[artifact_json(d) for d in chunk],
                              headers={"X-Total-Count": "250",
                                       "Link": '</bogus?page=99>; rel="next"'})

    client, rec = make_client(handler)
    async with client:
        arts = await client.project_artifacts("proj")
    assert [a.ref.digest for a in arts] == digests
    assert len(rec.requests) == 3
    assert arts[0].ref.repository == "team/app"
    assert arts[0].tags == () and arts[0].children == () and arts[0].scannable


async def test_it_reads_overviews_of_either_report_type() -> None:
    summary = {"report_id": "r1", "scan_status": "Success", "complete_percent": 100,
               "summary": {"total": 3, "fixable": 1, "summary": {"High": 2, "Low": 1}}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[
            artifact_json("sha256:a", scan_overview={
                "application/vnd.security.vulnerability.report; version=1.1": summary}),
            artifact_json("sha256:b", scan_overview={
                "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0":
                {"report_id": "r2", "scan_status": "Running", "complete_percent": 40}}),
            artifact_json("sha256:c", scan_overview=None, addition_links=None),
        ], headers={"X-Total-Count": "3"})

    client, _ = make_client(handler)
    async with client:
        a, b, c = await client.repository_artifacts("proj", "team/app")
    assert a.overview is not None and a.overview.counts == {"High": 2, "Low": 1}
    assert a.overview.fixable == 1 and a.overview.state is ScanState.SUCCESS
    assert b.overview is not None and b.overview.state is ScanState.RUNNING
    assert c.overview is None and not c.scannable


@pytest.mark.parametrize(
    ("responses", "calls", "sleeps"),
    [
        pytest.param([503, 200], 2, None, id="503-then-ok"),
        pytest.param([502, 500, 200], 3, None, id="5xx-backoff"),
        pytest.param(["reset", 200], 2, None, id="connection-reset"),
        pytest.param(["malformed", 200], 2, None, id="malformed-json-on-200"),
        pytest.param([429, 200], 2, [2.0], id="429-honours-retry-after"),
    ],
)
async def test_it_retries_transient_failures(
    responses: list[object], calls: int, sleeps: list[float] | None
) -> None:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        what = queue.pop(0)
        if what == "reset":
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        if what == "malformed":
            return httpx.Response(200, content=b'{"harbor_vers')
        if what == 200:
            return httpx.Response(200, json={"harbor_version": "v2.14.0"})
        assert isinstance(what, int)
        return httpx.Response(what, headers={"Retry-After": "2"},
                              json={"errors": [{"code": "X", "message": "busy"}]})

    client, rec = make_client(handler)
    async with client:
        info = await client.system_info()
    assert info.version == (2, 14, 0)
    assert len(rec.requests) == calls
    if sleeps is not None:
        assert sleeps[0] in rec.sleeps


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(400, errors.Unsupported, id="400-unsupported"),
        pytest.param(401, errors.AuthFailed, id="401"),
        pytest.param(403, errors.AuthFailed, id="403"),
        pytest.param(404, errors.NotFound, id="404"),
        pytest.param(409, errors.AlreadyScanning, id="409"),
        pytest.param(412, errors.NoScanner, id="412"),
    ],
)
async def test_it_maps_client_errors_without_retrying(
    status: int, error: type[errors.HarborError]
) -> None:
    client, rec = make_client(lambda r: httpx.Response(
        status, json={"errors": [{"code": "C", "message": "m"}]}))
    async with client:
        with pytest.raises(error) as caught:
            await client.trigger_scan("proj", "team/app", "latest")
    assert len(rec.requests) == 1
    assert caught.value.status == status
    assert "registry prod" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(500, errors.ServerError, id="500"),
        pytest.param(429, errors.RateLimited, id="429"),
        pytest.param("reset", errors.ServerError, id="reset"),
        pytest.param("malformed", errors.BadResponse, id="malformed"),
    ],
)
async def test_it_gives_up_after_max_retries(
    status: object, error: type[errors.HarborError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if status == "reset":
            raise httpx.ReadError("connection reset", request=request)
        if status == "malformed":
            return httpx.Response(200, content=b"<html>")
        assert isinstance(status, int)
        return httpx.Response(status, headers={"Retry-After": "1"})

    client, rec = make_client(handler, max_retries=2)
    async with client:
        with pytest.raises(error) as caught:
            await client.system_info()
    assert len(rec.requests) == 3
    assert "s3cr3t" not in str(caught.value)
    assert "robot" not in str(caught.value)


async def test_it_reads_a_null_scanner_and_a_forbidden_metadata_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/scanner"):
            return httpx.Response(200, content=b"null")
        return httpx.Response(403, json={"errors": [{"code": "FORBIDDEN", "message": "no"}]})

    client, _ = make_client(handler)
    async with client:
        assert await client.project_scanner("proj") is None
        assert await client.scanner_db_updated_at("uuid-1") is None


async def test_it_reads_the_scanner_db_time() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"properties": {
            "harbor.scanner-adapter/vulnerability-database-updated-at":
                "2026-03-01T10:00:00.123456789Z"}})

    client, _ = make_client(handler)
    async with client:
        when = await client.scanner_db_updated_at("uuid-1")
    assert when == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
