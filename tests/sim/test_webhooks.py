"""The simulator's project webhooks: policies and executions per swagger, and events sent as
Harbor sends them (its Default payload, three attempts, then dropped) to a real HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


class Receiver(ThreadingHTTPServer):
    """Records every POST; answers 500 to the first ``fail_first`` of them."""

    daemon_threads = True

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hooks/harbor/sim"

    def events(self, kind: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [p for p in self.posts if p[1]["type"] == kind]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.posts.append((dict(self.headers), body))
            failing = len(self.server.posts) <= self.server.fail_first
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receivers() -> Iterator[Any]:
    started: list[Receiver] = []

    def factory(fail_first: int = 0) -> Receiver:
        server = Receiver(fail_first)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.shutdown()
        server.server_close()


def policy(url: str, events: list[str], name: str = "scanwatch") -> dict[str, Any]:
    return {"name": name, "enabled": True, "event_types": events,
            "targets": [{"type": "http", "address": url, "auth_header": "Bearer s3cret",
                         "skip_cert_verify": False, "payload_format": "Default"}]}


def test_it_creates_lists_updates_and_deletes_policies_per_swagger(
        sim: Any, kit: Any, receivers: Any) -> None:
    project = next(iter(sim.robots))
    url = receivers().url
    base = f"/projects/{project}/webhook/policies"
    with kit.client(sim) as c:
        created = c.post(base, json=policy(url, ["PUSH_ARTIFACT"]))
        assert created.status_code == 201
        assert c.post(base, json=policy(url, ["PUSH_ARTIFACT"])).status_code == 409
        listed = c.get(base)
        assert listed.headers["X-Total-Count"] == "1"
        got = c.get(created.headers["Location"][len("/api/v2.0"):]).json()
        assert got["event_types"] == ["PUSH_ARTIFACT"] and got["enabled"] is True
        assert got["targets"][0]["address"] == url and got == listed.json()[0]
        assert c.put(f"{base}/{got['id']}", json=policy(
            url, ["SCANNING_COMPLETED"])).status_code == 200
        assert c.get(f"{base}/{got['id']}").json()["event_types"] == ["SCANNING_COMPLETED"]
        assert c.post(base, json=policy(url, ["NO_SUCH_EVENT"], "x")).status_code == 400
        assert c.delete(f"{base}/{got['id']}").status_code == 200
        assert c.get(f"{base}/{got['id']}").status_code == 404


def test_it_sends_push_and_scan_events_shaped_like_the_real_one(
        make_sim: Any, kit: Any, receivers: Any, shared_dir: Path) -> None:
    sim = make_sim(seed=3, projects=1, index_share=0.0, chart_share=0.0, scan_seconds=0.05)
    project = next(iter(sim.robots))
    receiver = receivers()
    with kit.client(sim) as c:
        c.post(f"/projects/{project}/webhook/policies", json=policy(
            receiver.url, ["PUSH_ARTIFACT", "SCANNING_COMPLETED"])).raise_for_status()
        pushed = sim.control.push(project=project)
        headers, push = kit.wait_for(lambda: receiver.events("PUSH_ARTIFACT"))[0]
        assert headers["Authorization"] == "Bearer s3cret"
        c.post(kit.art_path(project, pushed["repository"], pushed["digest"]) + "/scan"
               ).raise_for_status()
        _, done = kit.wait_for(lambda: receiver.events("SCANNING_COMPLETED"))[0]
    real = json.loads((shared_dir / "fixtures/harbor-webhooks/scanning_completed.json")
                      .read_text())
    for event in (push, done):
        assert set(event) == set(real)
        assert set(event["event_data"]["repository"]) >= set(real["event_data"]["repository"])
        resource = event["event_data"]["resources"][0]
        assert resource["digest"] == pushed["digest"] and resource["tag"] == pushed["tag"]
        assert event["event_data"]["repository"]["repo_full_name"] == pushed["repository"]
    assert "scan_overview" not in push["event_data"]["resources"][0]
    overview = done["event_data"]["resources"][0]["scan_overview"][kit.MIME]
    real_overview = real["event_data"]["resources"][0]["scan_overview"][kit.MIME]
    assert overview["scan_status"] == "Success" and set(overview) >= set(real_overview) - {
        "duration"}


@pytest.mark.parametrize(("fail_first", "posts", "status"), [
    pytest.param(2, 3, "Success", id="delivered-on-the-third-attempt"),
    pytest.param(5, 3, "Error", id="dropped-after-three-attempts"),
])
def test_it_retries_a_failing_receiver_three_times_then_drops(
        make_sim: Any, kit: Any, receivers: Any, fail_first: int, posts: int,
        status: str) -> None:
    sim = make_sim(seed=3, projects=1, webhook_retry_delay=0.05)
    project = next(iter(sim.robots))
    receiver = receivers(fail_first)
    base = f"/projects/{project}/webhook/policies"
    with kit.client(sim) as c:
        c.post(base, json=policy(receiver.url, ["PUSH_ARTIFACT"])).raise_for_status()
        policy_id = c.get(base).json()[0]["id"]
        sim.control.push(project=project)
        execution = kit.wait_for(lambda: [e for e in c.get(f"{base}/{policy_id}/executions")
                                          .json() if e["status"] != "Running"])[0]
    assert execution["status"] == status and execution["vendor_id"] == policy_id
    assert len(receiver.events("PUSH_ARTIFACT")) == posts


def test_it_drops_its_share_of_events_without_sending_them(
        make_sim: Any, kit: Any, receivers: Any) -> None:
    sim = make_sim(seed=3, projects=1, webhook_drop_share=1.0)
    project = next(iter(sim.robots))
    receiver = receivers()
    base = f"/projects/{project}/webhook/policies"
    with kit.client(sim) as c:
        c.post(base, json=policy(receiver.url, ["PUSH_ARTIFACT"])).raise_for_status()
        sim.control.push(project=project)
        policy_id = c.get(base).json()[0]["id"]
        kit.wait_for(lambda: [e for e in c.get(f"{base}/{policy_id}/executions").json()
                              if e["status"] == "Error"])
    assert receiver.events("PUSH_ARTIFACT") == [] and sim.state.webhooks.dropped == 1


def test_a_robot_without_project_admin_cannot_read_policies_over_http(sim: Any) -> None:
    project = next(iter(sim.robots))
    response = httpx.get(f"{sim.url}/api/v2.0/projects/{project}/webhook/policies",
                         auth=sim.robots[project])
    assert response.status_code == 403
