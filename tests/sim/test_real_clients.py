"""Two Harbor clients from PyPI, harborapi and harbor-api-client, against `scanwatch sim serve`.

Both were written against real Harbor, so where one cannot read the simulator (an endpoint it
lacks, a ``Link`` it cannot follow, a body its models refuse), the simulator is wrong. Each client
parses into its own models: harborapi validates with pydantic, harbor-api-client (swagger-codegen)
with its setters and dateutil. Both page by following ``Link``, as harborapi does by itself. Every
call here is one that the daemon's paths also make (``daemon/harbor/client.py``); the expected
values come from the simulator's own JSON, read with httpx in one page of 100.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import harbor_client
import harborapi
import httpx
import pytest
from harborapi import models as hm

MIME = "application/vnd.security.vulnerability.report; version=1.1"
NEXT = re.compile(r'<([^>]+)>; rel="next"')
CAPABILITIES = {"support_vulnerability": True, "support_sbom": True}


@dataclass(frozen=True)
class Served:
    url: str
    admin: tuple[str, str]
    robots: dict[str, tuple[str, str]]  # project → (user, secret)
    nested: dict[str, str]  # project → its nested repository, without the project: "team/app"

    def raw(self, path: str, **params: Any) -> httpx.Response:
        response = httpx.get(self.url + "/api/v2.0" + path, auth=self.admin, timeout=30,
                             params={"page_size": "100", **params},
                             headers={"X-Accept-Vulnerabilities": MIME})
        response.raise_for_status()
        return response


def _serve(*flags: str) -> Iterator[Served]:
    projects = 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "sim", "serve", "--log-level", "warning", "--seed", "5",
         "--projects", str(projects), "--repositories-per-project", "3",
         "--artifacts-per-repository", "12", "--scanned-share", "1.0", "--index-share", "0.2",
         "--chart-share", "0.1", "--vulnerabilities-per-artifact", "8", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        user, password = proc.stdout.readline().split()
        robots = [proc.stdout.readline().split() for _ in range(projects)]
        names = [p["name"] for p in httpx.get(url + "/api/v2.0/projects",
                                             auth=(user, password)).json()]
        by_project = {n: (r[0], r[1]) for n in names for r in robots if f"${n}+" in r[0]}
        nested = {n: next(r["name"].split("/", 1)[1] for r in httpx.get(
            f"{url}/api/v2.0/projects/{n}/repositories", auth=(user, password)).json()
            if r["name"].count("/") == 2) for n in names}
        yield Served(url, (user, password), by_project, nested)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    yield from _serve()


@pytest.fixture(scope="module")
def served_v2_10() -> Iterator[Served]:
    yield from _serve("--harbor-version", "v2.10.3")


def _overview(status: Any, total: Any, severity: Any) -> tuple[str, int | None, str]:
    return str(status), total, str(getattr(severity, "value", severity))


class HarborApi:
    """harborapi's async client; its models are pydantic, its pagination follows ``Link``."""

    def __init__(self, served: Served, auth: tuple[str, str]) -> None:
        self.c = harborapi.HarborAsyncClient(url=served.url + "/api/v2.0", username=auth[0],
                                             secret=auth[1], retry=None, timeout=30)

    async def version(self) -> str:
        info = await self.c.get_system_info()
        assert isinstance(info, hm.GeneralInfo)
        return str(info.harbor_version)

    async def projects(self) -> list[str]:
        return [str(p.name) for p in await self.c.get_projects(page_size=1)]

    async def repositories(self, project: str | None, page_size: int) -> list[tuple[Any, ...]]:
        found = await self.c.get_repositories(project, page_size=page_size)
        assert all(isinstance(r, hm.Repository) for r in found)
        return [(r.name, r.project_id, r.artifact_count) for r in found]

    async def artifacts(self, project: str, short: str, page_size: int) -> list[tuple[Any, ...]]:
        found = await self.c.get_artifacts(project, short, page_size=page_size,
                                           with_scan_overview=True)
        out = []
        for a in found:
            assert isinstance(a, hm.Artifact)
            summary = a.scan_overview.root.get(MIME) if a.scan_overview else None
            out.append((a.digest, a.repository_name, tuple(t.name for t in a.tags or ()),
                        None if summary is None else _overview(
                            summary.scan_status, summary.summary and summary.summary.total,
                            summary.severity)))
        return out

    async def report(self, project: str, short: str, digest: str) -> list[tuple[Any, ...]]:
        reports = await self.c.get_artifact_vulnerability_reports(project, short, digest,
                                                                  mime_type=MIME)
        report = reports.first()
        assert isinstance(report, hm.HarborVulnerabilityReport)
        return [(v.id, v.package, v.version, str(getattr(v.severity, "value", v.severity)))
                for v in report.vulnerabilities]

    async def scanners(self, project: str) -> list[tuple[Any, ...]]:
        listed = await self.c.get_scanners()
        own = await self.c.get_project_scanner(project)
        one = await self.c.get_scanner(own.uuid)
        metadata = await self.c.get_scanner_metadata(own.uuid)
        assert isinstance(metadata, hm.ScannerAdapterMetadata) and metadata.properties
        return [(s.uuid, s.name, s.capabilities) for s in [*listed, own, one]]

    async def allowlist(self) -> list[str]:
        return [str(i.cve_id) for i in (await self.c.get_cve_allowlist()).items or ()]

    async def scan_log(self, project: str, short: str, digest: str, report_id: str) -> str:
        return str(await self.c.get_artifact_scan_report_log(project, short, digest, report_id))

    async def close(self) -> None:
        await self.c.client.aclose()


class HarborApiClient:
    """harbor-api-client (swagger-codegen, urllib3). It leaves paging to its user: this one
    follows ``Link`` through the client's own ``call_api``, so each page is parsed by its models.
    Path parameters are quoted once by the client, so repository names go in quoted once."""

    def __init__(self, served: Served, auth: tuple[str, str]) -> None:
        conf = harbor_client.Configuration()
        conf.host = served.url + "/api/v2.0"
        conf.username, conf.password = auth
        self.api = harbor_client.ApiClient(conf)

    def _pages(self, first: Any, response_type: str) -> list[Any]:
        data, _, headers = first
        items = list(data or [])
        while (found := NEXT.search(headers.get("Link") or "")) is not None:
            data, _, headers = self.api.call_api(
                found.group(1).removeprefix("/api/v2.0"), "GET", response_type=response_type,
                header_params={"X-Accept-Vulnerabilities": MIME}, auth_settings=["basic"],
                _return_http_data_only=False)
            items.extend(data or [])
        return items

    def _model(self, data: Any, klass: str) -> Any:
        return self.api.deserialize(types.SimpleNamespace(data=json.dumps(data)), klass)

    async def version(self) -> str:
        info = harbor_client.SysteminfoApi(self.api).get_system_info()
        assert isinstance(info, harbor_client.GeneralInfo)
        return str(info.harbor_version)

    async def projects(self) -> list[str]:
        api = harbor_client.ProjectApi(self.api)
        found = self._pages(api.list_projects_with_http_info(page_size=1), "list[Project]")
        assert all(isinstance(p, harbor_client.Project) for p in found)
        return [p.name for p in found]

    async def repositories(self, project: str | None, page_size: int) -> list[tuple[Any, ...]]:
        api = harbor_client.RepositoryApi(self.api)
        first = (api.list_all_repositories_with_http_info(page_size=page_size) if project is None
                 else api.list_repositories_with_http_info(project, page_size=page_size))
        found = self._pages(first, "list[Repository]")
        assert all(isinstance(r, harbor_client.Repository) for r in found)
        return [(r.name, r.project_id, r.artifact_count) for r in found]

    async def artifacts(self, project: str, short: str, page_size: int) -> list[tuple[Any, ...]]:
        api = harbor_client.ArtifactApi(self.api)
        found = self._pages(api.list_artifacts_with_http_info(
            project, quote(short, safe=""), page_size=page_size, with_scan_overview=True,
            x_accept_vulnerabilities=MIME), "list[Artifact]")
        out = []
        for a in found:
            assert isinstance(a, harbor_client.Artifact)
            # ScanOverview has no declared properties, so the client leaves it a dict.
            raw = (a.scan_overview or {}).get(MIME)
            summary = None if raw is None else self._model(raw, "NativeReportSummary")
            out.append((a.digest, a.repository_name, tuple(t.name for t in a.tags or ()),
                        None if summary is None else _overview(
                            summary.scan_status, summary.summary and summary.summary.total,
                            summary.severity)))
        return out

    async def report(self, project: str, short: str, digest: str) -> list[tuple[Any, ...]]:
        # The spec types this addition as a string: the client has no model for the report.
        raw = harbor_client.ArtifactApi(self.api).get_vulnerabilities_addition(
            project, quote(short, safe=""), digest, x_accept_vulnerabilities=MIME,
            _preload_content=False)
        report = json.loads(raw.data)[MIME]
        return [(v["id"], v["package"], v["version"], v["severity"])
                for v in report["vulnerabilities"]]

    def _registration(self, raw: Any) -> tuple[Any, ...]:
        # The client types ``capabilities`` (Harbor >= v2.11) as ``dict(str, Object)``, a model
        # it lacks, so it cannot parse a registration that carries them, from Harbor or from us:
        # its model parses the rest, and the capabilities are read as sent.
        fields = {k: v for k, v in raw.items() if k != "capabilities"}
        registration = self._model(fields, "ScannerRegistration")
        assert isinstance(registration, harbor_client.ScannerRegistration)
        return (registration.uuid, registration.name, raw.get("capabilities"))

    async def scanners(self, project: str) -> list[tuple[Any, ...]]:
        scanners = harbor_client.ScannerApi(self.api)
        listed = json.loads(scanners.list_scanners(_preload_content=False).data)
        own = json.loads(harbor_client.ProjectApi(self.api).get_scanner_of_project(
            project, x_is_resource_name=True, _preload_content=False).data)
        one = json.loads(scanners.get_scanner(own["uuid"], _preload_content=False).data)
        metadata = scanners.get_scanner_metadata(own["uuid"])
        assert isinstance(metadata, harbor_client.ScannerAdapterMetadata) and metadata.properties
        return [self._registration(s) for s in [*listed, own, one]]

    async def allowlist(self) -> list[str]:
        found = harbor_client.SystemCVEAllowlistApi(self.api).get_system_cve_allowlist()
        return [i.cve_id for i in found.items or ()]

    async def scan_log(self, project: str, short: str, digest: str, report_id: str) -> str:
        return str(harbor_client.ScanApi(self.api).get_report_log(
            project, quote(short, safe=""), digest, report_id))

    async def close(self) -> None:
        self.api.rest_client.pool_manager.clear()


CLIENTS = [pytest.param(HarborApi, id="harborapi"),
           pytest.param(HarborApiClient, id="harbor-api-client")]


def _expected_artifacts(served: Served, project: str, short: str) -> list[tuple[Any, ...]]:
    listed = served.raw(f"/projects/{project}/repositories/{quote(quote(short, safe=''))}"
                        "/artifacts", with_scan_overview="true").json()
    out = []
    for a in listed:
        summary = (a.get("scan_overview") or {}).get(MIME)
        out.append((a["digest"], a["repository_name"], tuple(t["name"] for t in a["tags"] or ()),
                    None if summary is None else _overview(
                        summary["scan_status"], (summary.get("summary") or {}).get("total"),
                        summary.get("severity", ""))))
    return out


def _expected_repositories(served: Served, project: str) -> list[tuple[Any, ...]]:
    return [(r["name"], r["project_id"], r["artifact_count"])
            for r in served.raw(f"/projects/{project}/repositories").json()]


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_lists_projects_and_all_repositories_across_pages(served: Served,
                                                                   make: Any) -> None:
    client = make(served, served.admin)
    try:
        projects = await client.projects()
        everything = await client.repositories(None, 2)
        per_project = {p: await client.repositories(p, 2) for p in projects}
    finally:
        await client.close()
    assert projects == [p["name"] for p in served.raw("/projects").json()]
    assert len(projects) == 2
    for project, listed in per_project.items():
        assert listed == _expected_repositories(served, project)
        assert f"{project}/{served.nested[project]}" in [name for name, _, _ in listed]
    assert served.nested["library"] == "team/app"
    assert sorted(everything) == sorted(r for listed in per_project.values() for r in listed)
    assert len(everything) == 6


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_lists_only_a_robots_own_repositories(served: Served, make: Any) -> None:
    project, robot = next(iter(served.robots.items()))
    client = make(served, robot)
    try:
        listed = await client.repositories(None, 100)
    finally:
        await client.close()
    assert sorted(listed) == sorted(_expected_repositories(served, project))


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_pages_through_a_nested_repositorys_artifacts(served: Served, make: Any) -> None:
    client = make(served, served.admin)
    try:
        listed = {p: await client.artifacts(p, served.nested[p], 5) for p in served.robots}
    finally:
        await client.close()
    for project, artifacts in listed.items():
        expected = _expected_artifacts(served, project, served.nested[project])
        assert artifacts == expected
        assert len(artifacts) > 10  # three pages of five
        assert {name for _, name, _, _ in artifacts} == {f"{project}/{served.nested[project]}"}
        assert any(tags for _, _, tags, _ in artifacts)
        assert any(o is not None and o[0] == "Success" for *_, o in artifacts)


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_lists_no_artifacts_in_a_repository_that_does_not_exist(served: Served,
                                                                         make: Any) -> None:
    client = make(served, served.admin)
    try:
        listed = await client.artifacts(next(iter(served.robots)), "no/such-repository", 5)
    finally:
        await client.close()
    assert listed == []


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_serves_reports_that_agree_with_their_overview(served: Served,
                                                                make: Any) -> None:
    project = next(iter(served.robots))
    nested = served.nested[project]
    images = [a for a in served.raw(f"/projects/{project}/repositories/"
                                    f"{quote(quote(nested, safe=''))}/artifacts",
                                    with_scan_overview="true").json()
              if a["type"] == "IMAGE" and not a["references"]
              and (a.get("scan_overview") or {}).get(MIME, {}).get("scan_status") == "Success"]
    assert len(images) >= 2
    client = make(served, served.admin)
    try:
        reports = [await client.report(project, nested, a["digest"]) for a in images]
        log = await client.scan_log(project, nested, images[0]["digest"],
                                    images[0]["scan_overview"][MIME]["report_id"])
    finally:
        await client.close()
    for image, report in zip(images, reports, strict=True):
        summary = image["scan_overview"][MIME]
        assert len(report) == summary["summary"]["total"]
        counted: dict[str, int] = {}
        for _, _, _, severity in report:
            counted[severity] = counted.get(severity, 0) + 1
        assert counted == summary["summary"]["summary"]
    assert log.strip()


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_reads_scanners_system_info_and_the_allowlist(served: Served,
                                                               make: Any) -> None:
    client = make(served, served.admin)
    try:
        version = await client.version()
        scanners = await client.scanners(next(iter(served.robots)))
        allowlist = await client.allowlist()
    finally:
        await client.close()
    assert version.startswith("v2.14.0")
    assert len({uuid for uuid, _, _ in scanners}) == 1
    assert [(name, caps) for _, name, caps in scanners] == [("Trivy", CAPABILITIES)] * 3
    assert allowlist == []


@pytest.mark.parametrize("make", CLIENTS)
async def test_it_sends_no_scanner_capabilities_before_v2_11(served_v2_10: Served,
                                                             make: Any) -> None:
    client = make(served_v2_10, served_v2_10.admin)
    try:
        version = await client.version()
        scanners = await client.scanners(next(iter(served_v2_10.robots)))
    finally:
        await client.close()
    assert version.startswith("v2.10.3")
    assert [(name, caps) for _, name, caps in scanners] == [("Trivy", None)] * 3


async def test_both_clients_read_a_robots_own_record(served: Served) -> None:
    """``GET /robots?q=…`` (what `scanwatch doctor` reads for a robot's expiry) parses in both
    clients' ``Robot`` models, as admin sees it."""
    project = next(iter(served.robots))
    name = served.robots[project][0]
    pid = served.raw(f"/projects/{project}").json()["project_id"]
    query = f"Level=project,ProjectID={pid},name={name.removeprefix('robot$')}"
    client = harborapi.HarborAsyncClient(served.url + "/api/v2.0", username=served.admin[0],
                                         secret=served.admin[1])
    try:
        robots = await client.get_robots(query=query)
    finally:
        await client.client.aclose()
    assert [(r.name, r.level, r.expires_at) for r in robots] == [(name, "project", -1)]
    conf = harbor_client.Configuration()
    conf.host = served.url + "/api/v2.0"
    conf.username, conf.password = served.admin
    listed = harbor_client.RobotApi(harbor_client.ApiClient(conf)).list_robot(q=query)
    assert [(r.name, r.expires_at, r.disable) for r in listed] == [(name, -1, False)]
