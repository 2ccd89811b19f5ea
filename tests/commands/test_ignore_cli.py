"""`scanwatch ignore add|list|remove` as real subprocesses over the history of a real run
against the simulator: a rule applies at once to `findings` (and its reason shows there), is
counted by `config check` beside the config's own, and `remove` brings its findings back; bad
values are one line with exit 2 and write nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from runkit import Cli, error_lines, snapshot, write_config

from daemon.sim import SimOptions, start_simulator


def first_run(tmp_path: Path) -> Cli:
    sim = start_simulator(SimOptions(seed=5, projects=1, repositories_per_project=2,
                                     artifacts_per_repository=2, scanned_share=1.0,
                                     scan_seconds=0.1))
    try:
        cli = Cli(write_config(tmp_path, sim.url, "admin"), sim.admin[1])
        assert cli("run", "--once").returncode == 0
    finally:
        sim.stop()
    return cli


def open_ids(cli: Cli, *extra: str) -> dict[str, dict[str, object]]:
    found = cli("findings", "--all", "--format", "json", *extra)
    assert found.returncode == 0, found.stderr
    return {f"{f['repository']} {f['vulnerability']} {f['package']}": f
            for f in json.loads(found.stdout)}


def test_a_rule_added_applies_at_once_and_its_removal_brings_the_findings_back(
    tmp_path: Path
) -> None:
    cli = first_run(tmp_path)
    before = open_ids(cli)
    some = next(iter(before.values()))
    vuln = str(some["vulnerability"])
    covered = {k for k, f in before.items() if f["vulnerability"] == vuln}
    added = cli("ignore", "add", vuln, "--reason", "not reachable here", "--expires", "30d",
                "--by", "alice", "--format", "json")
    assert added.returncode == 0, added.stderr
    rule = json.loads(added.stdout)
    expires = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    assert rule["vulnerability"] == vuln and rule["package"] is None
    assert rule["created_by"] == "alice" and rule["expires"] == expires
    after = open_ids(cli)
    assert set(after) == set(before) - covered  # hidden at once, without a run
    shown = open_ids(cli, "--include-ignored")
    for key in covered:
        assert shown[key]["ignored"] is True
        assert shown[key]["ignore_reason"] == (
            f"not reachable here (ignore #{rule['id']} by alice, until {expires})")
    listed = cli("ignore", "list")
    assert listed.stdout.splitlines()[0].split() == [
        "ID", "VULNERABILITY", "PACKAGE", "WHERE", "EXPIRES", "BY", "ADDED", "REASON"]
    assert listed.stdout.splitlines()[-1] == "1 rule(s)"
    checked = cli("config", "check")
    assert "0 ignore rules (+ 1 added with `scanwatch ignore`)" in checked.stdout
    data = json.loads(cli("config", "check", "--format", "json").stdout)
    assert data["ignores"] == 0 and data["ignores_added"] == 1
    removed = cli("ignore", "remove", str(rule["id"]))
    assert removed.returncode == 0 and removed.stdout == f"ignore #{rule['id']} removed\n"
    assert set(open_ids(cli)) == set(before)
    assert cli("ignore", "list").stdout.startswith("no ignore rules added")


def test_bad_values_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    cli = first_run(tmp_path)
    untouched = snapshot(cli.database)
    past = (date.today() - timedelta(days=400)).isoformat()
    cases = [
        (("ignore", "add", "CVE-2023-1", "--reason", "x", "--expires", past),
         f"scanwatch: --expires {past} is in the past"),
        (("ignore", "add", "CVE-2023-1", "--reason", "x", "--expires", "soon"),
         "scanwatch: --expires 'soon': expected a date like 2026-12-31 or a duration like 30d "
         "or 8w"),
        (("ignore", "add", "--reason", "x", "--expires", "3d"),
         "scanwatch: ignore add: give a vulnerability (VULN) or --package, or both"),
        (("ignore", "add", "CVE-2023-1", "--reason", " ", "--expires", "3d"),
         "scanwatch: ignore add: --reason must say why"),
        (("ignore", "remove", "42"),
         "scanwatch: no ignore rule with id 42 (see `scanwatch ignore list`)"),
    ]
    for args, line in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = error_lines(result)
        assert len(lines) == 1 and lines[0].startswith(line), (args, lines)
    assert snapshot(cli.database) == untouched
