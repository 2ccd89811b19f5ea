"""`scanwatch webhook setup|status` as a user runs them: the console script in a subprocess
against the Harbor simulator's webhook policy and execution endpoints over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from runkit import SCANWATCH

from daemon.harbor import hookpolicy

SECRET = "Bearer hook-5e0d77"


def refused_url() -> str:
    """A URL nothing listens on (the port was bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/harbor/sim"


def scanwatch(tmp_path: Path, sim: Any, *args: str, secret: str = SECRET
              ) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f"""\
[daemon]
database = "sqlite:///{tmp_path / 'h.db'}"

[[registry]]
name = "sim"
url = "{sim.url}"
username = "admin"
password = "${{SCANWATCH_TEST_SIM_PASSWORD}}"
webhook_secret = "${{SCANWATCH_TEST_HOOK}}"
exclude_projects = ["platform"]
""")
    env = {**os.environ, "SCANWATCH_TEST_SIM_PASSWORD": sim.admin[1],
           "SCANWATCH_TEST_HOOK": secret}
    return subprocess.run([SCANWATCH, *args, "--config", str(config)], env=env,
                          capture_output=True, text=True, timeout=120)


def policies(sim: Any, project: str) -> list[dict[str, Any]]:
    got = httpx.get(f"{sim.url}/api/v2.0/projects/{project}/webhook/policies", auth=sim.admin)
    got.raise_for_status()
    return list(got.json())


def test_a_dry_run_then_setup_creates_the_policies_once(tmp_path: Path, make_sim: Any) -> None:
    sim = make_sim(seed=2, projects=3)
    url = refused_url()
    dry = scanwatch(tmp_path, sim, "webhook", "setup", "sim", "--url", url, "--dry-run",
                    "--format", "json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert {p["project"] for p in planned} == {"library", "payments"}  # platform excluded
    assert all(p["action"] == "create" and not p["applied"] for p in planned)
    assert policies(sim, "library") == []
    for _ in range(2):
        done = scanwatch(tmp_path, sim, "webhook", "setup", "sim", "--url", url)
        assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout and "created" not in done.stdout
    for project in ("library", "payments"):
        (only,) = policies(sim, project)
        assert only["name"] == hookpolicy.POLICY_NAME and only["enabled"]
        assert set(only["event_types"]) == set(hookpolicy.EVENT_TYPES)
        assert only["targets"][0]["address"] == url
        assert only["targets"][0]["auth_header"] == SECRET
    assert policies(sim, "platform") == []
    # A new secret: the policy is updated in place, and neither secret is ever printed.
    rotated = scanwatch(tmp_path, sim, "webhook", "setup", "sim", "--url", url,
                        secret="Bearer rotated-91")
    assert rotated.returncode == 0 and "secret differs" in rotated.stdout
    (only,) = policies(sim, "library")
    assert only["targets"][0]["auth_header"] == "Bearer rotated-91"
    assert "rotated-91" not in rotated.stdout + rotated.stderr
    assert "5e0d77" not in dry.stdout + done.stdout


def test_a_hand_made_policy_for_the_same_url_is_taken_over_not_doubled(
        tmp_path: Path, make_sim: Any) -> None:
    sim = make_sim(seed=2, projects=2)
    url = refused_url()
    httpx.post(f"{sim.url}/api/v2.0/projects/library/webhook/policies", auth=sim.admin, json={
        "name": "ours-by-hand", "enabled": False, "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": url, "auth_header": SECRET}]}
    ).raise_for_status()
    done = scanwatch(tmp_path, sim, "webhook", "setup", "sim", "--url", url, "--project", "lib*",
                     "--format", "json")
    assert done.returncode == 0, done.stderr
    (plan,) = json.loads(done.stdout)
    assert plan["action"] == "update" and "disabled" in plan["changes"]
    (only,) = policies(sim, "library")
    assert only["name"] == hookpolicy.POLICY_NAME and only["enabled"]


def test_status_shows_a_broken_hook_with_harbors_failed_deliveries(
        tmp_path: Path, make_sim: Any) -> None:
    sim = make_sim(seed=2, projects=2, webhook_retry_delay=0.05)
    url = refused_url()
    assert scanwatch(tmp_path, sim, "webhook", "setup", "sim", "--url", url).returncode == 0
    sim.control.push(project="library")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = scanwatch(tmp_path, sim, "webhook", "status", "sim", "--format", "json")
        rows = {r["project"]: r for r in json.loads(shown.stdout)}
        recent = rows["library"]["executions"]
        if recent and recent[0]["status"] == "Error":
            break
        time.sleep(0.2)
    assert recent[0]["event_type"] == "PUSH_ARTIFACT"
    assert "refused" in recent[0]["message"].lower()
    assert rows["payments"]["executions"] == []
    table = scanwatch(tmp_path, sim, "webhook", "status", "sim")
    assert "1 of last 1 failed" in table.stdout and "last failure" in table.stdout
    assert SECRET not in shown.stdout + table.stdout


def test_setup_without_a_webhook_secret_is_refused_in_one_line(
        tmp_path: Path, make_sim: Any) -> None:
    sim = make_sim(seed=2, projects=1)
    done = scanwatch(tmp_path, sim, "webhook", "setup", "sim", "--url", refused_url(),
                     secret="")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(
        "scanwatch: registry[sim].webhook_secret: not set")
    assert policies(sim, "library") == []
