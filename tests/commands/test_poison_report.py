"""One poison report does not block a registry: the real ``scanwatch run --once`` against the
simulator through a real proxy (tests/fault_proxy.py), with a real SQLite file.

- A lone UTF-16 surrogate in a package name (``"zlib\\ud800"``, valid JSON text) is replaced
  on the way in: every report of the run is stored, that one with U+FFFD.
- A report that still cannot be stored (here the SQLite file itself refuses it, through a
  trigger) is set aside with one line naming the artifact and the reason; the other reports
  of the run are stored, and it records nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_proxy import FaultProxy
from runkit import Cli, error_lines, write_config

from daemon.sim import SimOptions, Simulator, start_simulator
from daemon.store.db import open_store


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Cli, FaultProxy, Simulator]]:
    sim = start_simulator(SimOptions(
        seed=5, projects=1, repositories_per_project=3, artifacts_per_repository=3,
        vulnerabilities_per_artifact=6, scanned_share=1.0, index_share=0.0, chart_share=0.0,
        scan_seconds=0.1))
    proxy = FaultProxy(sim.url)
    try:
        yield Cli(write_config(tmp_path, proxy.url, "admin"), sim.admin[1]), proxy, sim
    finally:
        proxy.close()
        sim.stop()


def stored(database: Path) -> dict[str, int]:
    """Digest → how many scans history holds of it."""
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT a.digest, COUNT(s.id) FROM artifact a "
                                 "LEFT JOIN scan s ON s.artifact_id = a.id GROUP BY a.digest"))


def packages(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT package FROM finding")}


def a_digest(sim: Simulator) -> str:
    with httpx.Client(base_url=sim.url + "/api/v2.0", auth=sim.admin, timeout=30) as c:
        project = c.get("/projects").raise_for_status().json()[0]["name"]
        arts = c.get(f"/projects/{project}/artifacts", params={"page_size": 100}).json()
    return str(arts[0]["digest"])


def test_a_lone_surrogate_in_a_package_name_is_replaced_and_every_report_stored(
    proxied: tuple[Cli, FaultProxy, Simulator]
) -> None:
    cli, proxy, _ = proxied
    proxy.poison = lambda body: body.replace(b'"package":"', b'"package":"zlib\\ud800', 1)
    result = cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == []
    assert proxy.poisoned == 9
    scans = stored(cli.database)
    assert len(scans) == 9 and all(n == 1 for n in scans.values()), scans
    assert any(p.startswith("zlib\ufffd") for p in packages(cli.database))


def test_a_report_that_cannot_be_stored_is_set_aside_and_the_others_stored(
    proxied: tuple[Cli, FaultProxy, Simulator]
) -> None:
    cli, _, sim = proxied
    poison = a_digest(sim)
    open_store(f"sqlite:///{cli.database}").close()  # the schema, as a first start makes it
    with sqlite3.connect(cli.database) as conn:
        conn.execute(f"""CREATE TRIGGER refuse BEFORE INSERT ON scan WHEN NEW.artifact_id =
                         (SELECT id FROM artifact WHERE digest = '{poison}')
                         BEGIN SELECT RAISE(ABORT, 'this report cannot be stored'); END""")
    result = cli("run", "--once")
    assert result.returncode == 0, result.stderr
    [line] = error_lines(result)
    assert line.startswith("scanwatch: warning: prod-harbor/") and f"@{poison}: " in line
    assert line.endswith("report set aside: cannot be stored: IntegrityError: "
                         "(sqlite3.IntegrityError) this report cannot be stored"), line
    scans = stored(cli.database)
    assert scans.pop(poison) == 0  # nothing of it recorded
    assert len(scans) == 8 and all(n == 1 for n in scans.values()), scans


def status_of(cli: Cli, digest: str) -> dict[str, Any]:
    result = cli("status", "--format", "json")
    assert result.returncode == 0, result.stderr
    [row] = [r for r in json.loads(result.stdout) if r["digest"] == digest]
    return dict(row)


def test_status_shows_a_set_aside_report_as_unreadable_until_a_later_one_is_stored(
    proxied: tuple[Cli, FaultProxy, Simulator]
) -> None:
    cli, _, sim = proxied
    poison = a_digest(sim)
    open_store(f"sqlite:///{cli.database}").close()
    with sqlite3.connect(cli.database) as conn:
        conn.execute(f"""CREATE TRIGGER refuse BEFORE INSERT ON scan WHEN NEW.artifact_id =
                         (SELECT id FROM artifact WHERE digest = '{poison}')
                         BEGIN SELECT RAISE(ABORT, 'this report cannot be stored'); END""")
    assert cli("run", "--once").returncode == 0
    row = status_of(cli, poison)
    assert row["status"] == "Unreadable" and row["harbor_status"] == "Complete", row
    assert row["set_aside"]["reason"] == ("cannot be stored: IntegrityError: "
                                          "(sqlite3.IntegrityError) this report cannot be stored")
    table = cli("status")
    [line] = [ln for ln in table.stdout.splitlines() if "Unreadable" in ln]
    assert "report set aside" in line and "cannot be stored" in line, table.stdout
    others = [r for r in json.loads(cli("status", "--format", "json").stdout)
              if r["digest"] != poison]
    assert len(others) == 8 and {r["status"] for r in others} == {"Complete"}

    with sqlite3.connect(cli.database) as conn:
        conn.execute("DROP TRIGGER refuse")
    assert cli("run", "--once").returncode == 0
    assert stored(cli.database)[poison] == 1
    assert status_of(cli, poison)["status"] == "Complete"


def test_status_shows_reports_harbor_sent_unreadable_until_readable_ones_are_stored(
    proxied: tuple[Cli, FaultProxy, Simulator]
) -> None:
    cli, proxy, _ = proxied
    proxy.poison = lambda body: (b'{"application/vnd.security.vulnerability.report; '
                                 b'version=1.1": {"vulnerabilities": "not a list"}}')
    result = cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert set(stored(cli.database).values()) == {0}
    rows = json.loads(cli("status", "--format", "json").stdout)
    assert len(rows) == 9 and {r["status"] for r in rows} == {"Unreadable"}, rows
    assert all(r["set_aside"]["reason"].startswith("unreadable report: ") for r in rows), rows
    proxy.poison = None
    assert cli("run", "--once").returncode == 0
    rows = json.loads(cli("status", "--format", "json").stdout)
    assert {r["status"] for r in rows} == {"Complete"}, rows
    with sqlite3.connect(cli.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM set_aside_report").fetchone() == (0,)
