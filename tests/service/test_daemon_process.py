"""`scanwatch run` as a real process: sd_notify, SIGHUP reloads, SIGTERM (idle and mid-run),
one daemon per database, and the HTTP listener, against the simulator over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from daemon_driver import WAIT, DaemonProcess, scanwatch_command

from daemon.store.db import open_store

PASSWORD_ENV = "SCANWATCH_TEST_SIM_PASSWORD"


def schedule_toml(name: str, cron: str = "0 3 * * *", **extra: str) -> str:
    lines = [f'[[schedule]]\nname = "{name}"\ncron = "{cron}"\nregistries = ["sim"]']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_config(path: Path, sim: Any, db: Path, *schedules: str, stop_timeout: str = "5s",
                 listen: str = "", registry: str = "") -> Path:
    path.write_text(
        f'[daemon]\ndatabase = "sqlite:///{db}"\nstop_timeout = "{stop_timeout}"\n'
        f'listen = "{listen}"\n\n'
        f'[[registry]]\nname = "sim"\nurl = "{sim.url}"\nusername = "{sim.admin[0]}"\n'
        f'password = "${{{PASSWORD_ENV}}}"\nrequests_per_second = 200.0\nburst = 50\n'
        f"max_concurrent_requests = 8\n{registry}\n" + "\n".join(schedules))
    return path


def start(tmp_path: Path, sim: Any, config: Path, **kw: Any) -> DaemonProcess:
    return DaemonProcess(scanwatch_command(), ["run", "--config", str(config)], tmp_path,
                         env={PASSWORD_ENV: sim.admin[1]}, **kw)


@pytest.fixture
def processes():  # type: ignore[no-untyped-def]
    """Every daemon a test starts is killed at teardown if the test left it running."""
    started: list[DaemonProcess] = []
    yield started
    for p in started:
        p.close()


def test_it_notifies_systemd_reloads_on_sighup_and_stops_on_sigterm(
    tmp_path: Path, make_sim: Any, processes: list[DaemonProcess]
) -> None:
    sim = make_sim(projects=1, repositories_per_project=1, artifacts_per_repository=1)
    config = write_config(tmp_path / "config.toml", sim, tmp_path / "h.db",
                          schedule_toml("nightly"))
    d = start(tmp_path, sim, config, watchdog_usec=1_000_000)
    processes.append(d)
    d.wait_for_notice(lambda n: n == "READY=1", "READY=1")
    assert any(s.startswith("STATUS=nightly: next ") for s in d.notified("STATUS="))
    d.wait_until(lambda: len(d.notified("WATCHDOG=1")) >= 2, "two watchdog pets")

    good = config.read_text()
    config.write_text(good.replace('cron = "0 3 * * *"', 'cron = "61 3 * * *"'))  # broken
    statuses = len(d.notified("STATUS="))
    d.signal(signal.SIGHUP)
    refused = d.wait_for_event("config_reload_refused")
    assert "schedule" in refused["problem"] and "cron" in refused["problem"]
    d.wait_for_event("config_kept")
    kept = d.wait_until(lambda: [n for n in d.notified("STATUS=")[statuses:]
                                 if n.startswith("STATUS=nightly: next ")],
                        "the idle STATUS after the refusal")
    assert "weekly" not in kept[0]
    assert "RELOADING=1" in d.notices
    assert d.proc.poll() is None, "a broken config stopped the daemon"
    assert not d.logged("config_reloaded")

    config.write_text(good + "\n" + schedule_toml("weekly", "0 4 * * 0"))
    d.signal(signal.SIGHUP)
    reloaded = d.wait_for_event("config_reloaded")
    assert reloaded["schedules"] == ["nightly", "weekly"]
    d.wait_for_notice(lambda n: n.startswith("STATUS=") and "weekly: next " in n
                      and "nightly: next " in n, "a STATUS naming both schedules")

    d.signal(signal.SIGTERM)
    assert d.wait_exit(timeout=5 + 15) == 0, d.log_tail()  # stop_timeout + a loaded-machine margin
    assert "STOPPING=1" in d.notices
    assert d.logged("stopping", signal="SIGTERM") and d.logged("daemon_stopped")


def test_it_stops_mid_run_on_sigterm_and_the_next_start_resumes_harbors_scans(
    tmp_path: Path, make_sim: Any, processes: list[DaemonProcess]
) -> None:
    sim = make_sim(seed=4, projects=1, repositories_per_project=1, artifacts_per_repository=4,
                   scanned_share=0.0, index_share=0.0, chart_share=0.0, scan_seconds=3.0,
                   scanner_concurrency=1)
    images = sim.control.inventory()["scannable"]
    assert images == 4
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db, schedule_toml("nightly"),
                          stop_timeout="2s", registry="max_scans_in_flight = 2")
    # A run that ended long ago: the daemon starts with a catch-up run (on_missed = run_once).
    store = open_store(f"sqlite:///{db}")
    long_ago = datetime.now(UTC) - timedelta(days=2)
    store.record_run_finish(store.record_run_start("nightly", long_ago), long_ago, "ok")
    store.close()

    first = start(tmp_path, sim, config)
    processes.append(first)
    first.wait_for_event("run_started", schedule="nightly", trigger="catch_up")
    # Both slots taken: the scanner runs one scan at a time, 3 s each, so the first cannot end
    # within the 2 s stop_timeout and both are still in flight when the follow-up ends.
    first.wait_until(lambda: sim.control.stats()["scans_triggered"] >= 2, "two scans triggered")
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0, first.log_tail()
    assert sim.control.stats()["scans_triggered"] == 2, "a scan was triggered after SIGTERM"
    stopped = first.logged("scan_queue_stopped", registry="sim")
    assert stopped and stopped[0]["left_running"] == 2 and stopped[0]["not_triggered"] == 2
    finished = first.logged("run_finished", schedule="nightly")
    assert finished and finished[0]["result"] == "interrupted"
    assert not first.logged("runs_abandoned"), "the run had to be cancelled"
    assert "STOPPING=1" in first.notices
    store = open_store(f"sqlite:///{db}")
    try:
        last = store.last_run("nightly")
        assert last is not None and last.result == "interrupted"
        assert "2 scans left running in Harbor, 2 not triggered" in last.detail
        assert len(store.known_report_ids("sim")) < images
    finally:
        store.close()

    second = start(tmp_path, sim, config)
    processes.append(second)
    second.wait_for_event("run_resuming", schedule="nightly")
    second.wait_for_event("run_started", schedule="nightly", trigger="resume")
    finished = second.wait_for_event("run_finished", schedule="nightly")
    assert finished["ok"] is True and finished["result"] == "ok"
    second.signal(signal.SIGTERM)
    assert second.wait_exit() == 0, second.log_tail()

    # Every image scanned exactly once: the two scans left to Harbor were followed (or their
    # reports imported, if they ended meanwhile), not triggered a second time.
    assert len(second.logged("scan_triggered")) == images - 2
    assert sim.control.stats()["scans_triggered"] == images
    assert sim.control.inventory()["scanned"] == images
    store = open_store(f"sqlite:///{db}")
    try:
        records = store.scan_records("sim")
        assert len(store.known_report_ids("sim")) == images
        assert len(records) == images
        assert store.last_run("nightly").result == "ok"
    finally:
        store.close()


def plain_env(sim: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env[PASSWORD_ENV] = sim.admin[1]
    return env


def test_a_second_daemon_on_the_same_database_refuses_to_start(
    tmp_path: Path, make_sim: Any, processes: list[DaemonProcess]
) -> None:
    sim = make_sim(projects=1, repositories_per_project=1, artifacts_per_repository=1)
    config = write_config(tmp_path / "config.toml", sim, tmp_path / "h.db",
                          schedule_toml("nightly"))
    first = start(tmp_path, sim, config)
    processes.append(first)
    first.wait_for_notice(lambda n: n == "READY=1", "READY=1")

    second = subprocess.run([*scanwatch_command(), "run", "--config", str(config)],
                            cwd=tmp_path, env=plain_env(sim), capture_output=True,
                            text=True, timeout=WAIT)
    assert second.returncode != 0
    message = [line for line in second.stderr.splitlines() if not line.startswith("{")]
    assert len(message) == 1, second.stderr
    assert message[0].startswith("scanwatch: ") and "another scanwatch daemon" in message[0]
    assert "Traceback" not in second.stderr
    assert first.proc.poll() is None, "the first daemon died"
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_it_serves_metrics_health_and_readiness_on_the_listen_address(
    tmp_path: Path, make_sim: Any, processes: list[DaemonProcess]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    sim = make_sim(projects=1, repositories_per_project=1, artifacts_per_repository=1)
    config = write_config(tmp_path / "config.toml", sim, tmp_path / "h.db",
                          schedule_toml("nightly"), listen="127.0.0.1:0")
    d = start(tmp_path, sim, config)
    processes.append(d)
    listening = d.wait_for_event("http_listening")
    assert listening["host"] == "127.0.0.1" and listening["port"] > 0
    d.wait_for_notice(lambda n: n == "READY=1", "READY=1")
    base = f"http://127.0.0.1:{listening['port']}"

    status, text = get(f"{base}/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("scanwatch_runs", "scanwatch_scans_triggered", "scanwatch_scans_finished",
                 "scanwatch_api_calls", "scanwatch_queue_depth", "scanwatch_open_findings",
                 "scanwatch_alerts_sent", "scanwatch_alerts_dead_lettered",
                 "scanwatch_last_successful_run_timestamp_seconds",
                 "scanwatch_scanner_db_age_seconds"):
        assert name in families, sorted(families)
    assert families["scanwatch_runs"].type == "counter"
    assert families["scanwatch_open_findings"].type == "gauge"
    assert get(f"{base}/healthz") == (200, "ok\n")
    assert get(f"{base}/readyz") == (200, "ready\n")
    assert get(f"{base}/nothing")[0] == 404

    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0, d.log_tail()
