"""`scanwatch doctor` reads the robot account's own expiry where Harbor lets it (``GET
/robots?q=name=…`` needs the robot list permission), over real HTTP against the simulator, as a
subprocess: a date, a warning within 14 days, "never", or "expiry not readable"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runkit import Cli, error_lines, write_config

from daemon.sim import SimOptions, Simulator, start_simulator

DAY = 86400


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    started = start_simulator(SimOptions(seed=5, projects=2, repositories_per_project=1,
                                         artifacts_per_repository=1, scan_seconds=0.1))
    yield started
    started.stop()


def set_robot(sim: Simulator, **body: object) -> None:
    project = next(iter(sim.robots))
    httpx.post(sim.url + "/_sim/robot", json={"project": project, **body},
               timeout=30).raise_for_status()


def doctor(sim: Simulator, tmp_path: Path, name: str, secret: str) -> tuple[int, dict[str, Any]]:
    result = Cli(write_config(tmp_path, sim.url, name), secret)("doctor", "--format", "json")
    assert not error_lines(result), result.stderr
    assert secret not in result.stdout + result.stderr
    return result.returncode, {c["check"]: c for c in json.loads(result.stdout)["checks"]}


def expiry(sim: Simulator, tmp_path: Path) -> tuple[int, dict[str, object], str]:
    name, secret = next(iter(sim.robots.values()))
    code, checks = doctor(sim, tmp_path, name, secret)
    return code, checks["expiry"], name


def test_it_warns_when_the_account_cannot_read_the_scanner_db_time(sim: Simulator,
                                                                   tmp_path: Path) -> None:
    name, secret = next(iter(sim.robots.values()))
    code, checks = doctor(sim, tmp_path, name, secret)
    scanner = checks["scanner"]
    assert scanner["ok"] is True and scanner["warning"] is True
    assert scanner["detail"] == (
        f"Trivy answers, but {name} cannot read the time of its vulnerability DB (Harbor's "
        "/scanners/{id}/metadata needs the system-level scanner read permission): rescans "
        "after a DB update (the db_updated lane) and the coverage cannot work without it")
    _, as_admin = doctor(sim, tmp_path, *sim.admin)
    assert as_admin["scanner"]["warning"] is False
    assert as_admin["scanner"]["detail"].startswith("Trivy answers; its vulnerability DB is of ")
    assert as_admin["expiry"]["detail"] == "admin is a user account, not a robot: it has no " \
                                           "expiry"


def test_it_warns_when_the_robot_expires_within_two_weeks(sim: Simulator,
                                                          tmp_path: Path) -> None:
    expires = int(time.time()) + 5 * DAY + 3600
    set_robot(sim, expires_at=expires, may_list_robots=True)
    code, check, name = expiry(sim, tmp_path)
    date = time.strftime("%Y-%m-%d", time.gmtime(expires))
    assert check["ok"] is True and check["warning"] is True
    assert check["detail"].startswith(f"{name} expires on {date} ") and "in 5 day(s)" in \
        check["detail"]
    assert code == 0  # a warning does not fail the doctor


def test_it_shows_a_distant_expiry_without_a_warning(sim: Simulator, tmp_path: Path) -> None:
    set_robot(sim, expires_at=int(time.time()) + 90 * DAY + 3600, may_list_robots=True)
    _, check, name = expiry(sim, tmp_path)
    assert check["warning"] is False and "in 90 day(s)" in check["detail"]


def test_it_says_never_for_a_robot_without_expiry(sim: Simulator, tmp_path: Path) -> None:
    set_robot(sim, expires_at=-1, may_list_robots=True)
    _, check, name = expiry(sim, tmp_path)
    assert check == {"subject": "registry prod-harbor", "check": "expiry", "ok": True,
                     "detail": f"{name} never expires", "warning": False}


def test_it_says_not_readable_without_the_robot_list_permission(sim: Simulator,
                                                                tmp_path: Path) -> None:
    set_robot(sim, expires_at=int(time.time()) + 3 * DAY, may_list_robots=False)
    code, check, _ = expiry(sim, tmp_path)
    assert check["ok"] is True and check["warning"] is False
    assert check["detail"].startswith("expiry not readable: Harbor shows a robot its own "
                                      "record only with the robot list permission")
    assert "expires on" not in check["detail"]  # no guess


def test_the_robots_endpoint_answers_as_harbor_does(sim: Simulator) -> None:
    project = next(iter(sim.robots))
    name, secret = sim.robots[project]
    pid = httpx.get(f"{sim.url}/api/v2.0/projects/{project}", auth=sim.admin,
                    timeout=30).json()["project_id"]
    url = sim.url + "/api/v2.0/robots"
    stored = name.removeprefix("robot$")
    q = {"q": f"Level=project,ProjectID={pid},name={stored}"}
    set_robot(sim, expires_at=-1, may_list_robots=False)
    assert httpx.get(url, params=q, timeout=30).status_code == 401  # anonymous
    assert httpx.get(url, params=q, auth=(name, secret), timeout=30).status_code == 403
    # Without a level the system's robots are asked for: a project robot may never list them.
    assert httpx.get(url, params={"q": f"name={stored}"}, auth=(name, secret),
                     timeout=30).status_code == 403
    assert httpx.get(url, params={"q": "Level=project"}, auth=sim.admin,
                     timeout=30).status_code == 400
    listed = httpx.get(url, params=q, auth=sim.admin, timeout=30)
    assert listed.headers["X-Total-Count"] == "1"
    (robot,) = listed.json()
    assert (robot["name"], robot["level"], robot["expires_at"], robot["duration"]) == \
        (name, "project", -1, -1)
    assert "secret" not in robot
