"""Lineage where the account may not pull: Harbor issues a pull token that opens nothing, its
/v2 answers 401, and lineage says "unknown (no pull access to PROJECT)" without failing the run,
in one log line, and without asking again on the next run (only after a day)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from registry_proxy import RegistryProxy, _reply
from structlog.testing import capture_logs

from daemon.config_types import Config, RegistryConfig, ScheduleConfig, Secret
from daemon.scan.run import run_schedule
from daemon.sim import SimOptions, Simulator, start_simulator
from daemon.store.db import open_store

MANIFEST = "GET /v2/{name}/manifests/{reference}"
TOKEN = "GET /service/token"


def robot_config(sim: Simulator, project: str) -> Config:
    user, secret = sim.robots[project]
    registry = RegistryConfig(name="sim", url=sim.url, username=user,
                              password=Secret(secret, "literal"), requests_per_second=500,
                              burst=50, max_concurrent_requests=8, max_scans_in_flight=8)
    return Config(registries=(registry,), schedules=(ScheduleConfig(
        name="nightly", cron="0 2 * * *", registries=("sim",), select=()),))


def run(cfg: Config, store: Any, now: datetime) -> Any:
    return asyncio.run(run_schedule(cfg, store, cfg.schedules[0], trigger="test",
                                    now_fn=lambda: now))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield s
    s.close()


def test_a_base_in_a_project_the_robot_cannot_pull_is_unknown_no_pull_access(
        store: Any) -> None:
    options = SimOptions(seed=5, base_images=1, base_platforms=2, scanned_share=1.0,
                         index_share=0.3, annotated_share=1.0)
    with start_simulator(options) as sim:
        truth = sim.control.lineage()
        project = next(i["project"] for i in truth if i["annotated"] and i["base"])
        mine = [i for i in truth if i["project"] == project]
        annotated = {i["digest"] for i in mine if i["annotated"] and i["base"]}
        cfg = robot_config(sim, project)
        now = datetime.now(UTC)
        with capture_logs() as logs:
            result = run(cfg, store, now)
        first = sim.control.stats()["requests"]
        sim.control.reset_stats()
        run(cfg, store, now + timedelta(hours=1))
        second = sim.control.stats()["requests"]
    assert result.ok
    _, found = store.lineage_view("sim")
    for image in mine:  # the robot's own images: manifests read, the base beyond reach
        got = found[image["digest"]]
        if image["digest"] in annotated:
            assert (got.method, got.base) == ("denied", "unknown (no pull access to base)")
        else:
            assert got.method == "unknown" and not got.base_digest
    denied = [e for e in logs if e["event"] == "lineage_no_pull_access"]
    assert [(e["project"], e["status"]) for e in denied] == [("base", "401")]
    # the robot's images once each, the base index each annotation names once, one 401 first
    bases = {i["base"]["index"] or i["base"]["digest"] for i in mine if i["digest"] in annotated}
    assert first[MANIFEST] == len(mine) + 1 + 1  # + the first base probe; others spared
    assert denied[0]["images"] == len(bases)
    assert MANIFEST not in second and TOKEN not in second


def test_a_robot_without_pull_permission_is_asked_once_a_day_not_every_run(
        store: Any) -> None:
    options = SimOptions(seed=6, base_images=1, scanned_share=1.0, index_share=0.3)
    with start_simulator(options) as sim:
        project = next(i["project"] for i in sim.control.lineage() if i["base"])
        mine = [i for i in sim.control.lineage() if i["project"] == project]
        sim.control.set_robot(project, pull=False)
        cfg = robot_config(sim, project)
        now = datetime.now(UTC)
        with capture_logs() as logs:
            assert run(cfg, store, now).ok
        first = sim.control.stats()["requests"]
        sim.control.reset_stats()
        assert run(cfg, store, now + timedelta(hours=2)).ok
        second = sim.control.stats()["requests"]
        sim.control.set_robot(project, pull=True)  # access granted: seen after a day
        sim.control.reset_stats()
        assert run(cfg, store, now + timedelta(hours=25)).ok
        third = sim.control.stats()["requests"]
    # One 401 names the realm, one manifest is refused; the project's others are not asked.
    assert first[MANIFEST] == 2
    assert [(e["project"], e["images"]) for e in logs
            if e["event"] == "lineage_no_pull_access"] == [(project, len(mine))]
    assert MANIFEST not in second
    # each image now, and the private base its annotations name: refused once, spared after
    probe = 1 if any(i["annotated"] and i["base"] for i in mine) else 0
    assert third[MANIFEST] == len(mine) + 1 + probe
    _, found = store.lineage_view("sim")
    assert all(found[i["digest"]].base != f"unknown (no pull access to {project})"
               for i in mine)
    images = {i.digest: i for i in store.lineage_view("sim")[0]}
    assert all(images[i["digest"]].layers for i in mine)


def test_lineage_shows_the_refusal(store: Any, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    options = SimOptions(seed=6, base_images=1, scanned_share=1.0, index_share=0.0)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with start_simulator(options) as sim:
        project = next(i["project"] for i in sim.control.lineage() if i["base"])
        annotated = {i["digest"] for i in sim.control.lineage() if i["annotated"]}
        sim.control.set_robot(project, pull=False)
        assert run(robot_config(sim, project), store, datetime.now(UTC)).ok
    proc = subprocess.run([str(Path(sys.executable).with_name("scanwatch")), "lineage",
                           "--registry", "sim", "--database", url, "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    rows = json.loads(proc.stdout)
    assert rows and all(r["method"] == "denied" for r in rows)
    # an image whose annotation names the base: that base's project refused; else its own
    assert {r["digest"]: r["base"] for r in rows} == {
        r["digest"]: "unknown (no pull access to base)" if r["digest"] in annotated
        else f"unknown (no pull access to {project})" for r in rows}
    assert any(r["digest"] in annotated for r in rows)
    assert any(r["digest"] not in annotated for r in rows)


class PullGate(RegistryProxy):
    """A reverse proxy before Harbor that refuses authenticated pulls of one project."""

    def __init__(self, upstream: str, project: str, status: int) -> None:
        self.project, self.status = project, status
        super().__init__(upstream)

    def answer(self, handler: Any, route: str) -> bool:
        if route.startswith(f"/v2/{self.project}/") and handler.headers.get("Authorization"):
            _reply(handler, self.status, b'{"errors":[{"code":"DENIED","message":"denied"}]}')
            return True
        return False


@pytest.mark.parametrize("status", [403, 404])
def test_a_proxy_refusing_pulls_is_no_pull_access_too(status: int, store: Any) -> None:
    options = SimOptions(seed=6, base_images=1, scanned_share=1.0, index_share=0.3)
    with start_simulator(options) as sim, PullGate(sim.url, "payments", status) as gate:
        mine = [i for i in sim.control.lineage() if i["project"] == "payments"]
        cfg = robot_config(sim, "payments")
        user, secret = sim.admin
        cfg = replace(cfg, registries=(replace(cfg.registries[0], url=gate.url, username=user,
                                               password=Secret(secret, "literal")),))
        with capture_logs() as logs:
            assert run(cfg, store, datetime.now(UTC)).ok
    _, found = store.lineage_view("sim")
    methods = set()
    for image in mine:  # no layers: the annotations in the listing, else the build history
        got = found[image["digest"]]
        methods.add(got.method)
        if image["base"]:
            assert got.method in ("annotation", "history")
            assert got.base_digest == image["base"]["digest"]
        else:
            assert got.base == "unknown (no pull access to payments)" \
                or got.method == "external"
    assert "history" in methods
    assert [(e["project"], e["status"]) for e in logs
            if e["event"] == "lineage_no_pull_access"] == [("payments", str(status))]
