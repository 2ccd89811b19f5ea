"""Credentials Harbor takes for none stop every command that calls it, and change nothing.

On real Harbor a wrong or expired secret is no 401: the request goes on anonymous, so the
project list shows public projects only and ``/systeminfo`` has no ``harbor_version``; for 1.5 s
after a failed login even the right password of that user is anonymous. Each case below runs
after a first good run (so that there are findings to lose) and checks that ``run --once``,
``status``, ``scan``, ``scan --wait``, ``scan-log`` and the daemon's own runs each stop with one
line naming the account and the likely cause, exit 1 and leave every table of the SQLite file
as it was. The simulator is the real one over HTTP; every command is a real subprocess.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runkit import REGISTRY, World, error_lines, snapshot, wait_for

from daemon.sim import SimOptions, Simulator, start_simulator

ADMIN_CAUSE = "wrong password, or locked for 1.5 s after a failed login?"
ROBOT_CAUSE = "wrong or expired secret?"
COMMANDS = [("run", "--once"), ("status",), ("scan", "{target}"), ("scan", "{target}", "--wait"),
            ("scan-log", "{target}")]


def options(**kw: Any) -> SimOptions:
    return SimOptions(seed=2, projects=2, repositories_per_project=2, artifacts_per_repository=2,
                      scanned_share=0.5, index_share=0.0, chart_share=0.0, scan_seconds=0.1,
                      scanner_concurrency=4, **kw)


def refused(world: World, cause: str) -> None:
    """Every command that calls Harbor refuses in one line and leaves the file as it was."""
    cli = world.cli
    before = snapshot(cli.database)
    expected = f"scanwatch: {REGISTRY}: Harbor accepted no credentials for {world.username}: "
    for command in COMMANDS:
        args = [a.format(target=world.target) for a in command]
        result = cli(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert error_lines(result) == [expected + cause], (args, result.stderr)
        assert cli.env["HARBOR_SECRET"] not in result.stdout + result.stderr
        assert snapshot(cli.database) == before, args


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    started = start_simulator(options())
    yield started
    started.stop()


def test_a_wrong_password_stops_every_command_and_changes_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    world = World(sim, tmp_path, "admin", sim.admin[1], next(iter(sim.robots)))
    world.cli.env["HARBOR_SECRET"] = "not-the-password"
    refused(world, ADMIN_CAUSE)


def test_an_expired_robot_stops_every_command_and_changes_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    project = list(sim.robots)[1]
    name, secret = sim.robots[project]
    world = World(sim, tmp_path, name, secret, project)
    httpx.post(sim.url + "/_sim/robot", json={"project": project, "expired": True},
               timeout=30).raise_for_status()
    try:
        refused(world, ROBOT_CAUSE)
    finally:
        sim.control.set_robot(project, expired=False)


def test_the_right_password_while_the_name_is_locked_out_changes_nothing(
    tmp_path: Path
) -> None:
    # Harbor locks a user name for 1.5 s after a failed login (core/auth/authenticator.go);
    # this simulator holds the lock for a minute, so that the commands surely run inside it.
    locked = start_simulator(options(login_freeze=60.0))
    try:
        world = World(locked, tmp_path, "admin", locked.admin[1], next(iter(locked.robots)))

        def fail() -> None:
            # The failing request sleeps the freeze in the simulator; its lock is what counts.
            with contextlib.suppress(httpx.TimeoutException):
                httpx.get(locked.url + "/api/v2.0/systeminfo", auth=("admin", "wrong"),
                          timeout=1)

        thread = threading.Thread(target=fail, daemon=True)
        thread.start()
        wait_for(lambda: locked.control.auth()["locked"] == ["admin"])
        refused(world, ADMIN_CAUSE)
        assert locked.control.auth()["locked"] == ["admin"], "the lock ran out mid-test"
    finally:
        locked.stop()
