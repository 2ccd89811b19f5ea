"""Done-when of issue 19: three daemons on one real PostgreSQL against three simulators, every
kind of schedule (run_once, skip, jitter) and a digest route, SIGKILLed and SIGSTOPped at random
(10 blows), bounded to about three minutes. ``bench/ha.py`` runs the longer campaign.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from daemon_driver import scanwatch_command
from ha_campaign import ADMIN_URL, NOT_SET, Campaign, fresh_database

TTL = 3  # seconds: a renewal every second
CYCLE = TTL / 3
SLACK = 3.0  # a loaded 2-core machine: a tick can start a little late


@pytest.fixture
def campaign(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not ADMIN_URL:
        pytest.skip(NOT_SET)
    with fresh_database() as url:
        run = Campaign(tmp_path, url, ttl=TTL, seed=19)
        try:
            yield run
        finally:
            run.close()


def test_three_instances_survive_ten_random_kills_and_stops(campaign: Campaign) -> None:
    figures = campaign.run(chaos_seconds=60, blows=10)
    kinds = {b.kind for b in figures.blows}
    assert len(figures.blows) >= 10 and kinds == {"kill", "stop"}, figures.blows
    # Every unit a victim held was taken over, within TTL + a renewal cycle.
    assert figures.lost_units == 0, figures.blows
    assert figures.takeovers and max(figures.takeovers) <= TTL + CYCLE + SLACK, figures.blows
    # Every alert the scanner DB updates called for arrived, nothing else, none twice except a
    # message in flight when its relay was struck.
    assert figures.missing == set() and figures.unexpected == set(), figures
    assert figures.duplicates <= figures.in_flight_allowance, figures
    # No run twice: no two runs of a schedule at once, every cron minute fired (and recorded)
    # once across the cluster, skip and jitter included.
    assert figures.overlapping_runs == [], figures.overlapping_runs
    assert figures.unfired_minutes == {}, figures.unfired_minutes
    # A SIGSTOPped instance resumed after losing its lease finished nothing under the old epoch.
    assert figures.stale_finishes == []
    assert any(b.kind == "stop" and b.taken for b in figures.blows)
    stopped = [p for p in campaign.everyone if any(b.kind == "stop" and b.pid == p.proc.pid
                                                   and b.taken for b in figures.blows)]
    assert all(p.logged("lease_lost") or p.logged("lease_expired_locally") for p in stopped)


def test_cluster_status_readyz_and_lease_gauges(campaign: Campaign) -> None:
    campaign.start_all()
    campaign._wait(lambda: sorted(len([1 for h, _ in campaign.leases().values()
                                       if campaign.pid_of(h) == p.proc.pid])
                                  for p in campaign.everyone) == [1, 2, 2],
                   "a fair share: ceil(5 / 3) at most", 30)
    held_total = 0
    for port, proc in zip(campaign.ports, campaign.everyone, strict=True):
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200 and "holds" in ready.text
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "scanwatch_cluster_instances 3.0" in metrics
        held = [line for line in metrics.splitlines()
                if line.startswith("scanwatch_lease_held{") and line.endswith(" 1.0")]
        mine = [u for u, (h, _) in campaign.leases().items()
                if campaign.pid_of(h) == proc.proc.pid]
        assert sorted(line.split('"')[1] for line in held) == sorted(mine)
        held_total += len(held)
    assert held_total == 5
    config = campaign.everyone[0].proc.args[-1]
    status = subprocess.run([*scanwatch_command(), "cluster", "status", "--config", config,
                             "--format", "json"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **campaign.env})
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert sorted(i["pid"] for i in shown["instances"]) == sorted(
        p.proc.pid for p in campaign.everyone)
    assert all(i["live"] for i in shown["instances"])
    assert {(u["unit"], u["holder"], u["epoch"]) for u in shown["leases"]} == {
        (u, h, e) for u, (h, e) in campaign.leases().items()}
    table = subprocess.run([*scanwatch_command(), "cluster", "status", "--config", config],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, **campaign.env})
    assert "registry:r0" in table.stdout and "outbox" in table.stdout and "live" in table.stdout


def test_cluster_status_on_sqlite_says_one_daemon_runs_there(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    sqlite3.connect(db).close()
    done = subprocess.run([*scanwatch_command(), "cluster", "status", "--database",
                           f"sqlite:///{db}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "scanwatch: cluster status: the database is SQLite, where one daemon runs alone; "
        "several instances share a PostgreSQL database"]


def test_lease_ttl_is_read_and_a_bad_one_is_one_clear_problem(tmp_path: Path) -> None:
    from datetime import timedelta

    from daemon import config
    from tests.test_config import BASE, ENV, problems_of, write

    with_ttl = '[daemon]\nlease_ttl = "10s"\n' + BASE
    assert config.load(write(tmp_path, with_ttl), environ=ENV).daemon.lease_ttl == timedelta(
        seconds=10)
    assert config.load(write(tmp_path, BASE), environ=ENV).daemon.lease_ttl == timedelta(
        seconds=30)
    (problem,) = problems_of(tmp_path, '[daemon]\nlease_ttl = "0s"\n' + BASE)
    assert problem.startswith("daemon.lease_ttl: must be ") and 'got "0s"' in problem


def test_on_sqlite_a_second_daemon_is_still_refused_with_todays_message(tmp_path: Path) -> None:
    from daemon_driver import DaemonProcess, driver_command

    from tests.runkit import write_config

    config = write_config(tmp_path, "http://127.0.0.1:9", "u")  # not reached before 02:00
    env = {"HARBOR_SECRET": "s3cret"}
    first = DaemonProcess(driver_command(), ["run", "--config", str(config)], tmp_path, env=env)
    try:
        first.wait_for_event("daemon_ready")
        second = subprocess.run([*scanwatch_command(), "run", "--config", str(config)],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, **env})
        assert second.returncode != 0
        assert f"in use by another scanwatch daemon (pid {first.proc.pid})" in second.stderr
        assert "s3cret" not in second.stderr
    finally:
        first.close()
