"""Done when: the three real KEV versions, served in turn over real HTTP by the simulator, make
a registry whose images carry CVE-2025-48384 send exactly one ``known_exploited`` alert naming
the images and the upgrade, with no rescan; an unchanged feed sends nothing and costs one 304;
garbage or an unreachable feed keeps the last good copy, with one line.

Everything runs as a user runs it: ``scanwatch run --once`` and ``scanwatch intel refresh``
(the console script, in a subprocess), a JSON webhook receiver on 127.0.0.1, a real SQLite file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedkit import GIT, GIT_CVE, git_reports
from hookkit import Hook
from runkit import sim_toml

from daemon.sim import SimOptions, start_simulator

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
VERSIONS = ("kev-2025.08.18.json", "kev-2025.08.21.json", "kev-2025.08.25.json")


@dataclass
class World:
    sim: Any
    hook: Hook
    config: Path
    env: dict[str, str]
    kev_dir: Path
    db: Path

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCANWATCH, *argv, "--config", str(self.config)],
                              capture_output=True, text=True, env=self.env, timeout=180)

    def refresh(self) -> tuple[int, dict[str, Any], str]:
        proc = self.cli("intel", "refresh", "--feed", "kev", "--format", "json")
        return proc.returncode, json.loads(proc.stdout), proc.stderr

    def serve(self, source: str) -> dict[str, Any]:
        target = source if source == "garbage" else str(self.kev_dir / source)
        reply = httpx.post(f"{self.sim.url}/_sim/feeds", json={"kev": target})
        assert reply.status_code == 200, reply.text
        return dict(reply.json()["kev"])

    def answers(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.sim.url}/_sim/feeds").json()["kev"]["answers"])

    def scans_triggered(self) -> int:
        return int(httpx.get(f"{self.sim.url}/_sim/stats").json()["scans_triggered"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("kev")
    kev_dir = shared_dir / "fixtures" / "kev"
    hook = Hook()
    sim = start_simulator(SimOptions(
        seed=3, projects=2, repositories_per_project=3, artifacts_per_repository=2,
        scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.05,
        scanner_concurrency=4, job_workers=8, trivy_reports=git_reports(tmp / "reports"),
        feeds={"kev": str(kev_dir / VERSIONS[0])}))
    config = tmp / "config.toml"
    config.write_text(f"""\
{sim_toml(tmp / 'history.db', sim.url, drain=True)}
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]

[[feed]]
name = "kev"
url = "{sim.url}/feeds/kev.json"
max_retries = 1
timeout = "5s"

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:{hook.port}/hook"]

[[route]]
receivers = ["hook"]
min_severity = "Low"
events = ["new", "known_exploited"]
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)
    w = World(sim, hook, config, env, kev_dir, tmp / "history.db")
    proc = w.cli("run", "--once")
    assert proc.returncode == 0, proc.stderr
    yield w
    sim.stop()
    hook.shutdown()


def carriers(db: Path) -> set[tuple[str, str]]:
    """(project/repository, digest) of every counting image whose report carries the CVE."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.project || '/' || r.name, a.digest FROM artifact a "
            "JOIN repository r ON r.id = a.repository_id JOIN finding f "
            "ON f.repository_id = r.id AND f.vulnerability = ? AND f.resolved_at IS NULL "
            "WHERE a.counting", (GIT_CVE,)).fetchall()
    return {(repo, digest) for repo, digest in rows}


def test_the_kev_versions_in_turn_send_one_known_exploited_alert_without_a_rescan(
        world: World) -> None:
    sent_before = len(world.hook.bodies)
    scans_before = world.scans_triggered()
    repos_with_git = {repo for repo, _ in carriers(world.db)}
    assert repos_with_git, "the simulator put the git report in no image: change the seed"

    # The first copy is a baseline: 1,400 entries, no alert.
    code, out, err = world.refresh()
    assert code == 0, err
    assert out["feeds"][0] | {"requests": 1} == {
        "feed": "kev", "outcome": "updated", "version": "2025.08.18", "requests": 1,
        "events": 0, "error": None}
    # Unchanged: one request, answered 304, nothing sent.
    code, out, _ = world.refresh()
    assert (code, out["feeds"][0]["outcome"], out["feeds"][0]["requests"]) == (0, "unchanged", 1)
    assert world.answers() == {"200": 1, "304": 1}
    # 2025.08.21 adds a CVE no image carries: stored, nothing sent.
    world.serve(VERSIONS[1])
    code, out, _ = world.refresh()
    assert (out["feeds"][0]["version"], out["feeds"][0]["events"]) == ("2025.08.21", 0)
    assert len(world.hook.bodies) == sent_before
    # 2025.08.25 adds CVE-2025-48384: one message, one known_exploited action per repository.
    world.serve(VERSIONS[2])
    code, out, err = world.refresh()
    assert code == 0, err
    assert out["feeds"][0]["version"] == "2025.08.25"
    assert out["feeds"][0]["events"] == len(repos_with_git)
    assert out["alerts"] == {"queued": 1, "sent": 1, "pending": 0, "dead": 0}
    [doc] = world.hook.documents(sent_before)
    items = [(a, v) for a in doc["fix_now"] for v in a["vulnerabilities"] if v["id"] == GIT_CVE]
    assert doc["fix_now"][0]["kev"] is True  # known exploited first
    named = {im["project"] + "/" + im["repository"] for a, _ in items for im in a["images"]}
    assert named == repos_with_git
    assert {(v["change"], v["reason"]) for _, v in items} == {("known_exploited", "kev_added")}
    assert {(a["package"], a["installed_version"], a["fix_version"]) for a, _ in items} == {GIT}
    [kev] = {json.dumps(v["kev"], sort_keys=True) for _, v in items}
    assert json.loads(kev) == {"date_added": "2025-08-25", "due_date": "2025-09-15",
                               "name": "Git Link Following Vulnerability",
                               "ransomware": False, "required_action": kev_action(world)}
    assert world.scans_triggered() == scans_before  # nothing was rescanned
    # Once more, unchanged: a 304 and no message.
    code, out, _ = world.refresh()
    assert (out["feeds"][0]["outcome"], len(world.hook.bodies)) == ("unchanged",
                                                                       sent_before + 1)


def kev_action(world: World) -> str:
    catalog = json.loads((world.kev_dir / VERSIONS[2]).read_text())
    [entry] = [v for v in catalog["vulnerabilities"] if v["cveID"] == GIT_CVE]
    return str(entry["requiredAction"])


def test_garbage_or_an_unreachable_feed_keeps_the_last_good_copy_with_one_line(
        world: World, tmp_path: Path) -> None:
    world.serve(VERSIONS[2])
    world.refresh()
    world.serve("garbage")
    code, out, err = world.refresh()
    assert code == 1
    assert out["feeds"][0]["outcome"] == "failed"
    # One log line (the daemon's), one line for the user of the command.
    [logged] = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert (logged["event"], logged["kept_version"]) == ("feed_failed", "2025.08.25")
    [said] = [line for line in err.splitlines() if line.startswith("scanwatch:")]
    assert "not JSON" in said and "kept version 2025.08.25" in said
    status = json.loads(world.cli("intel", "status", "--format", "json").stdout)
    assert status[0]["version"] == "2025.08.25"
    assert "not JSON" in status[0]["last_error"]
    # Unreachable: a port nobody listens on.
    config = tmp_path / "down.toml"
    config.write_text(world.config.read_text().replace(
        f"{world.sim.url}/feeds/kev.json", "http://127.0.0.1:9/feeds/kev.json"))
    proc = subprocess.run([SCANWATCH, "intel", "refresh", "--config", str(config)],
                          capture_output=True, text=True, env=world.env, timeout=60)
    assert proc.returncode == 1
    [said] = [line for line in proc.stderr.splitlines() if line.startswith("scanwatch:")]
    assert "ConnectError" in said and "127.0.0.1:9" in said
    status = json.loads(world.cli("intel", "status", "--format", "json").stdout)
    assert status[0]["version"] == "2025.08.25"


def test_findings_carry_kev_and_filter_on_it(world: World) -> None:
    world.serve(VERSIONS[2])
    world.refresh()
    proc = world.cli("findings", "--kev", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and {r["vulnerability"] for r in rows} == {GIT_CVE}
    assert {(r["kev"], r["kev_date_added"], r["kev_due_date"]) for r in rows} == {
        (True, "2025-08-25", "2025-09-15")}
    every = json.loads(world.cli("findings", "--format", "json").stdout)
    assert {r["vulnerability"] for r in every if not r["kev"]} == {"CVE-2025-48385",
                                                                    "CVE-2025-4802"}
