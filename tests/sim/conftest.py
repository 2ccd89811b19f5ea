"""Helpers for the simulator's tests: cookie-less clients (as the daemon must be) and polling."""

from __future__ import annotations

import http.cookiejar
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

MIME = "application/vnd.security.vulnerability.report; version=1.1"


def no_cookies() -> http.cookiejar.CookieJar:
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def enc(short: str) -> str:
    return quote(quote(short, safe=""), safe="")


def client(sim: Any, auth: Any = "admin") -> httpx.Client:
    credentials = sim.admin if auth == "admin" else auth
    return httpx.Client(base_url=sim.url + "/api/v2.0", auth=credentials, cookies=no_cookies(),
                        headers={"X-Is-Resource-Name": "true"}, timeout=10)


def art_path(project: str, repository: str, reference: str) -> str:
    short = repository.split("/", 1)[1] if repository.startswith(project + "/") else repository
    return f"/projects/{project}/repositories/{enc(short)}/artifacts/{reference}"


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def all_artifacts(c: httpx.Client, project: str, q: str | None = None) -> list[dict[str, Any]]:
    params = {"with_scan_overview": "true", "page_size": "100"}
    if q:
        params["q"] = q
    response = c.get(f"/projects/{project}/artifacts", params=params)
    response.raise_for_status()
    return list(response.json())


def find(sim: Any, c: httpx.Client, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    for project in sim.robots:
        for a in all_artifacts(c, project):
            if predicate(a):
                return a
    raise AssertionError("no artifact matches")


def overview(a: dict[str, Any]) -> dict[str, Any] | None:
    return (a.get("scan_overview") or {}).get(MIME)


@pytest.fixture
def sim(make_sim: Any) -> Any:
    return make_sim(seed=7, projects=2, repositories_per_project=3, artifacts_per_repository=3,
                    index_share=0.2, chart_share=0.1, cnab_share=0.05, scanned_share=0.5,
                    scan_seconds=0.2)


@pytest.fixture
def kit() -> Any:
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    import types

    return types.SimpleNamespace(MIME=MIME, no_cookies=no_cookies, enc=enc, client=client,
                                 art_path=art_path, wait_for=wait_for, all_artifacts=all_artifacts,
                                 find=find, overview=overview)
