"""The webhook endpoint on the daemon's real listener (127.0.0.1), fed Harbor's real event and
forged ones: only an event with the registry's secret, within 1 MB and in Harbor's shape is
queued; every refusal is counted and queues nothing."""

from __future__ import annotations

import asyncio
import copy
import http.cookiejar
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from daemon.config_types import Secret
from daemon.service.hooks import HookEndpoint, HookEvent, parse_event
from daemon.service.http import HttpListener
from daemon.service.metrics import Metrics

SECRET = "Bearer 7f3c-webhook-secret"


@pytest.fixture
def real_event(shared_dir: Path) -> dict[str, Any]:
    path = shared_dir / "fixtures" / "harbor-webhooks" / "scanning_completed.json"
    return dict(json.loads(path.read_text()))


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, HookEndpoint, Metrics]]:
    metrics = Metrics()
    queue: asyncio.Queue[HookEvent] = asyncio.Queue(maxsize=100)
    hooks = HookEndpoint({"prod": Secret(SECRET, "env:HOOK")}, metrics, queue)
    server = HttpListener(metrics, lambda: (True, "ok"), hooks)
    host, port = await server.start("127.0.0.1:0")
    yield f"http://{host}:{port}/hooks/harbor/prod", hooks, metrics
    await server.stop()


def counted(metrics: Metrics, result: str) -> float:
    text = generate_latest(metrics.registry).decode()
    for line in text.splitlines():
        if line.startswith("scanwatch_webhook_events_total{") and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_it_queues_harbors_real_scanning_completed_event(
        listener: Any, real_event: dict[str, Any]) -> None:
    url, hooks, metrics = listener
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=real_event, headers={"Authorization": SECRET})
    assert response.status_code == 202
    event = hooks.queue.get_nowait()
    assert (event.kind, event.project, event.repository) == (
        "SCANNING_COMPLETED", "test", "test/alpine/helm")
    assert event.digests == (real_event["event_data"]["resources"][0]["digest"],)
    assert counted(metrics, "accepted") == 1


def _without_resources(e: dict[str, Any]) -> None:
    e["event_data"]["resources"] = []


def _bad_digest(e: dict[str, Any]) -> None:
    e["event_data"]["resources"][0]["digest"] = "latest"


def _unknown_type(e: dict[str, Any]) -> None:
    e["type"] = "DELETE_ARTIFACT"


def _foreign_namespace(e: dict[str, Any]) -> None:
    e["event_data"]["repository"]["namespace"] = "other"


@pytest.mark.parametrize(("headers", "change", "raw", "status", "result"), [
    pytest.param({}, None, None, 401, "unauthorized", id="no-secret"),
    pytest.param({"Authorization": SECRET + "x"}, None, None, 401, "unauthorized",
                 id="wrong-secret"),
    pytest.param({"Authorization": SECRET}, None, b"x" * (1024 * 1024 + 1), 413, "too_large",
                 id="oversize"),
    pytest.param({"Authorization": SECRET}, None, b"{not json", 400, "malformed",
                 id="not-json"),
    pytest.param({"Authorization": SECRET}, _without_resources, None, 400, "malformed",
                 id="no-resources"),
    pytest.param({"Authorization": SECRET}, _bad_digest, None, 400, "malformed",
                 id="digest-not-sha256"),
    pytest.param({"Authorization": SECRET}, _unknown_type, None, 400, "malformed",
                 id="event-type-not-subscribed"),
    pytest.param({"Authorization": SECRET}, _foreign_namespace, None, 400, "malformed",
                 id="repository-outside-its-namespace"),
])
async def test_a_forged_event_is_refused_counted_and_queues_nothing(
        listener: Any, real_event: dict[str, Any], headers: dict[str, str], change: Any,
        raw: bytes | None, status: int, result: str) -> None:
    url, hooks, metrics = listener
    event = copy.deepcopy(real_event)
    if change is not None:
        change(event)
    body = raw if raw is not None else json.dumps(event).encode()
    async with httpx.AsyncClient() as client:
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == status
    assert SECRET not in response.text and hooks.queue.empty()
    assert counted(metrics, result) == 1 and counted(metrics, "accepted") == 0


async def test_a_registry_without_a_webhook_secret_has_no_endpoint(
        listener: Any, real_event: dict[str, Any]) -> None:
    url, hooks, _ = listener
    async with httpx.AsyncClient() as client:
        response = await client.post(url.replace("/prod", "/staging"), json=real_event,
                                     headers={"Authorization": SECRET})
        health = await client.get(url.split("/hooks")[0] + "/healthz")
    assert response.status_code == 404 and hooks.queue.empty() and health.status_code == 200


@pytest.mark.parametrize("kind", ["PUSH_ARTIFACT", "SCANNING_FAILED", "SCANNING_STOPPED"])
def test_it_reads_the_other_event_types_in_harbors_shape(
        kind: str, real_event: dict[str, Any]) -> None:
    # Push, failed and stopped events carry no scan_overview (a scan-all one has none either).
    event = copy.deepcopy(real_event)
    event["type"] = kind
    del event["event_data"]["resources"][0]["scan_overview"]
    parsed = parse_event("prod", json.dumps(event).encode())
    assert parsed.kind == kind and parsed.repository == "test/alpine/helm"


async def test_the_simulators_push_and_scan_events_are_queued(
        listener: Any, make_sim: Any) -> None:
    url, hooks, _ = listener
    sim = make_sim(seed=3, projects=1, index_share=0.0, chart_share=0.0, scan_seconds=0.05)
    project = next(iter(sim.robots))
    policy = {"name": "scanwatch", "enabled": True,
              "event_types": ["PUSH_ARTIFACT", "SCANNING_COMPLETED"],
              "targets": [{"type": "http", "address": url, "auth_header": SECRET}]}
    # Without cookies, as the daemon's client: Harbor's CSRF check refuses a POST with its sid.
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=sim.url + "/api/v2.0", auth=sim.admin,
                                 cookies=jar) as c:
        created = await c.post(f"/projects/{project}/webhook/policies", json=policy)
        assert created.status_code == 201
        pushed = sim.control.push(project=project)
        first = await asyncio.wait_for(hooks.queue.get(), timeout=10)
        short = pushed["repository"].split("/", 1)[1].replace("/", "%252F")
        scan = await c.post(f"/projects/{project}/repositories/{short}/artifacts/"
                            f"{pushed['digest']}/scan")
        assert scan.status_code == 202
        second = await asyncio.wait_for(hooks.queue.get(), timeout=10)
    assert (first.kind, second.kind) == ("PUSH_ARTIFACT", "SCANNING_COMPLETED")
    assert first.digests == second.digests == (pushed["digest"],)
    assert first.repository == pushed["repository"] and first.project == project
