"""`scanwatch runs` and `runs show ID` read the runs `run --once` recorded, as subprocesses
against the real simulator."""

from __future__ import annotations

import json
from pathlib import Path

from runkit import Cli, error_lines, write_config

from daemon.sim import SimOptions, start_simulator


def test_it_lists_the_runs_newest_first_and_shows_one(tmp_path: Path) -> None:
    sim = start_simulator(SimOptions(seed=4, projects=1, repositories_per_project=2,
                                     artifacts_per_repository=2, scan_seconds=0.1))
    try:
        cli = Cli(write_config(tmp_path, sim.url, "admin"), sim.admin[1])
        before = cli("runs")
        assert before.returncode == 1
        assert error_lines(before) == [f"scanwatch: no history database at {cli.database} "
                                       "(nothing has been recorded yet)"]
        for _ in range(2):
            assert cli("run", "--once").returncode == 0
    finally:
        sim.stop()
    listed = cli("runs", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [r["schedule"] for r in runs] == ["nightly", "nightly"]
    assert runs[0]["id"] > runs[1]["id"] and runs[0]["started_at"] >= runs[1]["started_at"]
    assert all(r["finished_at"] and r["duration_seconds"] >= 0 for r in runs)
    table = cli("runs").stdout.splitlines()
    assert table[0].split() == ["ID", "SCHEDULE", "STARTED", "DURATION", "TRIGGER",
                                "REGISTRIES", "SCANS", "CHANGES", "ALERTS", "BEHIND", "RESULT",
                                "DETAIL"]
    first, second = runs[1], runs[0]
    assert first["trigger"] == second["trigger"] == "once"
    assert first["registries"] == ["prod-harbor"] and first["errors"] == {}
    # The first run scanned what Harbor had not, the second found nothing left to do.
    assert first["scans"] and sum(first["scans"].values()) == first["scans"].get("complete")
    assert first["changes"] >= 0 and first["alerts"] == 0  # no receivers, no routes
    assert second["scans"] == {} and second["changes"] == 0
    assert table[2].split()[5:8] == ["once", "prod-harbor", "none"]  # the newest first
    assert table[-1] == "2 run(s)"
    shown = cli("runs", "show", str(runs[1]["id"]), "--format", "json")
    assert json.loads(shown.stdout) == runs[1]
    other = cli("runs", "--schedule", "weekly").stdout
    assert other == "no runs recorded yet for schedule weekly\n"
    missing = cli("runs", "show", "999")
    assert missing.returncode == 2
    assert error_lines(missing) == ["scanwatch: no run with id 999 (see `scanwatch runs`)"]
