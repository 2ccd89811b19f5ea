"""The live progress of `run --once` and `scan --wait`, as real subprocesses against the real
simulator: on a pseudo-terminal a redrawn display (registries walked, artifacts seen, reports
imported, scans n/N with an ETA) that log lines never cut through; through a pipe, no escape
sequence at all; `scan` without `--wait` says the scan was triggered."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

from runkit import REGISTRY, Cli, on_terminal, open_findings, write_config

from daemon.commands._progress import RunDisplay
from daemon.sim import SimOptions, start_simulator

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen_lines(raw: str) -> list[str]:
    """What the terminal showed, line by line: escape sequences out, each redraw (\\r) a line."""
    return [part for line in ANSI.sub("", raw).split("\n") for part in line.split("\r")]


def small_sim() -> object:
    return start_simulator(SimOptions(seed=7, projects=2, repositories_per_project=2,
                                      artifacts_per_repository=2, scanned_share=0.25,
                                      chart_share=0.0, index_share=0.0, scan_seconds=0.3))


def test_run_once_on_a_terminal_shows_the_live_display_then_the_summary(tmp_path: Path) -> None:
    sim: object = small_sim()
    try:
        cli = Cli(write_config(tmp_path, sim.url, "admin"), sim.admin[1])  # type: ignore[attr-defined]
        code, raw = on_terminal(["run", "--once", "--config", str(cli.config)], cli.env)
    finally:
        sim.stop()  # type: ignore[attr-defined]
    assert code == 0, raw
    lines = screen_lines(raw)
    walked = [ln for ln in lines if ln.startswith(f"{REGISTRY}: walked, 8 artifacts seen")]
    assert walked and "reports imported" in walked[-1] and "scans selected" in walked[-1]
    bars = [ln for ln in lines if ln.startswith("scans ")]
    assert bars and re.search(r"\b(\d+)/\1\b 0 running, 0 queued ETA", bars[-1]), bars[-3:]
    assert any(re.search(r"\b0/\d+\b", b) or re.search(r"\b[1-9]\d*/\d+ \d+ running", b)
               for b in bars[:-1]), "the display was never drawn before the end"
    # At the default level only warnings show: no info event on the screen.
    assert "scan_triggered" not in raw and "run_started" not in raw
    assert any(ln.split()[:2] == ["SCHEDULE", "REGISTRY"] for ln in lines)  # the summary
    first = [ln for ln in lines if ln.startswith(f"first run of {REGISTRY}: ")]
    assert first and first[0].endswith(" findings recorded, none announced (later runs "
                                        "announce what changes)")
    assert int(first[0].split(": ")[1].split()[0]) == len(open_findings(cli.database)) > 0
    assert "Traceback" not in raw


def test_log_lines_go_above_the_display_never_through_it(tmp_path: Path) -> None:
    sim: object = small_sim()
    try:
        cli = Cli(write_config(tmp_path, sim.url, "admin"), sim.admin[1])  # type: ignore[attr-defined]
        code, raw = on_terminal(["run", "--once", "--config", str(cli.config),
                                 "--log-level", "info"], cli.env)
    finally:
        sim.stop()  # type: ignore[attr-defined]
    assert code == 0, raw
    lines = screen_lines(raw)
    logged = [ln for ln in lines if "scan_triggered" in ln or "scan_finished" in ln]
    assert len(logged) >= 6
    for line in logged:  # whole log lines, never mixed with a piece of the display
        assert "━" not in line and "artifacts seen" not in line, line
        assert re.match(r"\d{4}-\d\d-\d\dT", line.strip()), line


def test_through_a_pipe_there_is_no_escape_sequence_and_scan_says_triggered(
    tmp_path: Path
) -> None:
    sim: object = small_sim()
    try:
        cli = Cli(write_config(tmp_path, sim.url, "admin"), sim.admin[1])  # type: ignore[attr-defined]
        ran = cli("run", "--once")
        target = f"{REGISTRY}/library/*"
        triggered = cli("scan", target, "--format", "json")
        waited = cli("scan", f"{REGISTRY}/payments/*", "--wait")
        code, raw = on_terminal(["scan", f"{REGISTRY}/payments/*", "--wait",
                                 "--config", str(cli.config)], cli.env)
    finally:
        sim.stop()  # type: ignore[attr-defined]
    assert ran.returncode == 0, ran.stderr
    assert "\x1b" not in ran.stdout + ran.stderr
    rows = json.loads(triggered.stdout)
    assert rows and {(r["status"], r["detail"]) for r in rows} == {("Queued", "triggered")}
    assert waited.returncode == 0 and "\x1b" not in waited.stdout + waited.stderr
    assert sum("Complete" in ln for ln in waited.stdout.splitlines()) >= 4
    # On a terminal: the display while it runs, then the results table on stdout.
    assert code == 0, raw
    lines = screen_lines(raw)
    assert any(re.search(r"scans .*\b4/4 0 running", ln) for ln in lines), lines[-8:]
    final = lines[lines.index(next(ln for ln in lines if ln.startswith("ARTIFACT"))):]
    assert sum("Complete" in ln for ln in final) == 4


def test_off_a_terminal_a_progress_line_at_most_once_a_minute(tmp_path: Path) -> None:
    out = tmp_path / "err.txt"
    now = [0.0]
    with out.open("w") as stream:
        display = RunDisplay(live=False, quiet_logs=True, stream=stream, clock=lambda: now[0])
        with display:
            display.stage("prod", "walking")
            display.stage("prod", "walked", 40)
            display.stage("prod", "imported", 3)
            display.stage("prod", "selected", 5)
            for second in range(0, 150, 10):
                now[0] = float(second)
                artifact = SimpleNamespace(ref=SimpleNamespace(
                    registry="prod", project="p", repository="r", digest=f"sha256:{second}"),
                    overview=None)
                display(SimpleNamespace(artifact=artifact, outcome="complete", ours=True))
    lines = out.read_text().splitlines()
    assert lines == [
        "scanwatch: progress: registries 1/1 walked, 40 artifacts seen, 3 reports imported; "
        "scans 7/7 done, 0 running, 0 queued",
        "scanwatch: progress: registries 1/1 walked, 40 artifacts seen, 3 reports imported; "
        "scans 13/13 done, 0 running, 0 queued"]
