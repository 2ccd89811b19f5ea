"""Stopping means stopping: after SIGTERM or SIGINT no scan is triggered, the scans in flight are
followed, and the process ends as soon as they have, long before ``stop_timeout``. A real
process, a real signal, the simulator over real HTTP with a scanner slow enough that many scans
are waiting when the signal comes.

The scanner runs one scan at a time, 3 s each, and the daemon may have two in flight: after the
first two triggers no third can come before the first scan ends (3 s later), so the trigger
count read before the signal is the one there would be without any trigger after it.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemon_driver import WAIT, DaemonProcess, scanwatch_command
from test_daemon_process import PASSWORD_ENV, schedule_toml, start, write_config

from daemon.store.db import open_store

IMAGES = 8
IN_FLIGHT = 2
LONG_STOP = "10m"  # far beyond WAIT: a process that waited it out fails the test


@pytest.fixture
def processes():  # type: ignore[no-untyped-def]
    started: list[DaemonProcess] = []
    yield started
    for p in started:
        p.close()


def slow_sim(make_sim: Any) -> Any:
    sim = make_sim(seed=4, projects=1, repositories_per_project=1,
                   artifacts_per_repository=IMAGES, scanned_share=0.0, index_share=0.0,
                   chart_share=0.0, scan_seconds=3.0, scanner_concurrency=1)
    assert sim.control.inventory()["scannable"] == IMAGES
    return sim


def triggers(sim: Any) -> int:
    return int(sim.control.stats()["scans_triggered"])


def triggered_after_stop(proc: DaemonProcess) -> list[str]:
    """``scan_triggered`` log lines written after the ``stopping`` line (stderr keeps order)."""
    events = [e.get("event") for e in proc.events]
    first_stop = events.index("stopping")
    return [str(e.get("artifact")) for e in proc.events[first_stop:]
            if e.get("event") == "scan_triggered"]


def both_slots_taken(proc: DaemonProcess, sim: Any) -> int:
    """Wait until Harbor has both scans and the daemon has logged both triggers; the count of
    triggers then. (Harbor counts a trigger when its request arrives, the daemon logs it when
    the answer is back: a signal sent between the two is answered with ``stopping`` before the
    trigger that came first is logged.)"""
    proc.wait_until(lambda: triggers(sim) >= IN_FLIGHT
                    and len(proc.logged("scan_triggered")) >= IN_FLIGHT, "both scan slots taken")
    return triggers(sim)


def config_with_old_run(tmp_path: Path, sim: Any) -> tuple[Path, Path]:
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db, schedule_toml("nightly"),
                          stop_timeout=LONG_STOP, registry=f"max_scans_in_flight = {IN_FLIGHT}")
    # A run that ended long ago: the daemon starts with a catch-up run (on_missed = run_once).
    store = open_store(f"sqlite:///{db}")
    long_ago = datetime.now(UTC) - timedelta(days=2)
    store.record_run_finish(store.record_run_start("nightly", long_ago), long_ago, "ok")
    store.close()
    return config, db


def last_run(db: Path) -> Any:
    store = open_store(f"sqlite:///{db}")
    try:
        return store.last_run("nightly"), len(store.known_report_ids("sim"))
    finally:
        store.close()


def test_the_daemon_triggers_nothing_after_sigterm_and_exits_when_its_scans_have_ended(
    tmp_path: Path, make_sim: Any, processes: list[DaemonProcess]
) -> None:
    sim = slow_sim(make_sim)
    config, db = config_with_old_run(tmp_path, sim)
    d = start(tmp_path, sim, config)
    processes.append(d)
    d.wait_for_event("run_started", schedule="nightly", trigger="catch_up")
    before = both_slots_taken(d, sim)

    d.signal(signal.SIGTERM)
    # WAIT (60 s) is a tenth of stop_timeout: exiting means the daemon did not wait it out.
    assert d.wait_exit(timeout=WAIT) == 0, d.log_tail()

    assert triggers(sim) == before == IN_FLIGHT, "scans were triggered after SIGTERM"
    assert triggered_after_stop(d) == []
    stopped = d.logged("scan_queue_stopped", registry="sim")
    assert stopped and stopped[0]["left_running"] == 0
    assert stopped[0]["not_triggered"] == IMAGES - IN_FLIGHT
    assert not d.logged("runs_abandoned"), "the run had to be cancelled"
    run, reports = last_run(db)
    # The two scans in flight were followed to their end and stored; the run did not do all
    # it selected, so it is interrupted and the next start resumes it.
    assert reports == IN_FLIGHT
    assert run.result == "interrupted"
    assert run.detail.startswith(f"stopped by SIGTERM: 0 scans left running in Harbor, "
                                 f"{IMAGES - IN_FLIGHT} not triggered")


def once(tmp_path: Path, sim: Any, config: Path) -> DaemonProcess:
    return DaemonProcess(scanwatch_command(), ["run", "--once", "--config", str(config)],
                         tmp_path, env={PASSWORD_ENV: sim.admin[1]}, notify=False)


@pytest.mark.parametrize(
    ("sig", "twice", "left_running"),
    [
        pytest.param(signal.SIGTERM, False, 0, id="sigterm-follows-the-scans-in-flight"),
        pytest.param(signal.SIGINT, False, 0, id="ctrl-c-follows-the-scans-in-flight"),
        pytest.param(signal.SIGINT, True, IN_FLIGHT, id="ctrl-c-twice-leaves-them-to-harbor"),
    ],
)
def test_run_once_stops_starting_work_on_a_signal(
    tmp_path: Path, make_sim: Any, processes: list[DaemonProcess],
    sig: signal.Signals, twice: bool, left_running: int,
) -> None:
    sim = slow_sim(make_sim)
    config, db = config_with_old_run(tmp_path, sim)
    p = once(tmp_path, sim, config)
    processes.append(p)
    before = both_slots_taken(p, sim)

    p.signal(sig)
    if twice:
        p.wait_for_event("stopping", signal=sig.name)
        p.signal(sig)
    assert p.wait_exit(timeout=WAIT) == 128 + sig, p.log_tail()

    assert triggers(sim) == before == IN_FLIGHT, f"scans were triggered after {sig.name}"
    assert triggered_after_stop(p) == []
    if twice:
        assert p.logged("stopping_now", signal=sig.name)
    not_triggered = IMAGES - IN_FLIGHT
    message = [line for line in p.lines if not line.startswith("{")]
    assert message == [
        f"scanwatch: stopped by {sig.name}: schedule nightly: {left_running} scans left "
        f"running in Harbor, {not_triggered} not triggered (the next run follows Harbor's "
        f"scans; queued alerts stay in the outbox)"], p.log_tail()
    assert "Traceback" not in "\n".join(p.lines)
    assert not p.logged("alerts_delivered"), "it went on to deliver after the stop"
    run, reports = last_run(db)
    assert run.result == "interrupted"
    assert reports == IN_FLIGHT - left_running
