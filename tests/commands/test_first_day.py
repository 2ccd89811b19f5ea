"""A newcomer's traps, as real subprocesses: without `[daemon] database` the history goes to the
XDG state directory (never the current directory) and `config check` names it; a database that
cannot be created fails `config check` with the path and a hint; `status` says why an artifact
is Not Supported (its type)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runkit import REGISTRY, SCANWATCH, TIMEOUT, Cli, write_config

from daemon.sim import SimOptions, start_simulator


def without_database(tmp_path: Path, url: str) -> Path:
    path = write_config(tmp_path, url, "admin")
    path.write_text("[[registry]]" + path.read_text().split("[[registry]]", 1)[1])
    return path


def test_the_default_database_is_in_the_xdg_state_directory_not_the_cwd(tmp_path: Path) -> None:
    config = without_database(tmp_path, "http://127.0.0.1:9")
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "HOME": str(home), "HARBOR_SECRET": "x"}
    env.pop("XDG_STATE_HOME", None)
    env.pop("STATE_DIRECTORY", None)
    result = subprocess.run([SCANWATCH, "config", "check", "--config", str(config), "--format",
                             "json"], capture_output=True, text=True, env=env, cwd=work,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    expected = home / ".local" / "state" / "scanwatch" / "history.db"
    assert json.loads(result.stdout)["database"] == f"sqlite:///{expected}"
    assert not list(work.iterdir()) and not home.exists()  # a check writes nothing


def test_a_database_that_cannot_be_created_fails_config_check_with_the_path(
    tmp_path: Path
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", "admin")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    config.write_text(config.read_text().replace(
        str(tmp_path / "history.db"), str(blocked / "history.db")))
    result = Cli(config, "x")("config", "check")
    assert result.returncode == 2
    assert (f"scanwatch: {config}: daemon.database: {blocked / 'history.db'}: cannot create it "
            f"({blocked} is not a directory); set [daemon] database to a writable place"
            in result.stderr), result.stderr


def test_status_says_why_an_artifact_is_not_supported(tmp_path: Path) -> None:
    sim = start_simulator(SimOptions(seed=3, projects=1, repositories_per_project=3,
                                     artifacts_per_repository=3, chart_share=0.5,
                                     index_share=0.0, scan_seconds=0.1))
    try:
        cli = Cli(write_config(tmp_path, sim.url, "admin"), sim.admin[1])
        result = cli("status", REGISTRY, "--format", "json")
        table = cli("status", REGISTRY)
    finally:
        sim.stop()
    assert result.returncode == 0, result.stderr
    every = json.loads(result.stdout)
    assert all(v != "" for r in every for v in r.values())  # absent is null, never ""
    assert any(r["status"] == "Not Scanned" and r["detail"] is None for r in every)
    rows = [r for r in every if r["status"] == "Not Supported"]
    assert rows, "the simulator made no chart"
    for row in rows:
        assert row["type"].upper() != "IMAGE"
        assert row["reason"] == f"type {row['type'].upper()}: the scanner scans images only"
    assert any("Not Supported  type CHART: the scanner scans images only" in ln
               for ln in table.stdout.splitlines()), table.stdout


def test_alerts_preview_before_the_first_run_says_why_nothing_would_be_sent(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", "admin")
    config.write_text(config.read_text() + '\n[[receiver]]\nname = "team"\n'
                      'urls = ["json://127.0.0.1:9/hook"]\n\n[[route]]\nreceivers = ["team"]\n')
    cli = Cli(config, "x")
    result = cli("alerts", "preview")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Nothing would be sent: no run has been recorded yet (no "
                                    f"history database at {cli.database}). The first "
                                    "`scanwatch run --once` records")
    as_json = cli("alerts", "preview", "--format", "json")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])
    assert not cli.database.exists()  # a preview creates nothing
