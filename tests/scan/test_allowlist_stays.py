"""Harbor allowlists read in one run stay in force: opening the store, `run --once` again and
again, and a daemon that reloads its configuration record no event and send nothing.

Before the allowlists were kept in the database, every store open, `--once` and SIGHUP reset
them until the run re-read Harbor, and the allowlisted findings were recorded as "reopened"
(reason ignore_expired) in between: routable events, and messages.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from daemon.store import tables as t
from daemon.store.db import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from daemon_driver import DaemonProcess, driver_command, scanwatch_command  # noqa: E402

PASSWORD_ENV = "SCANWATCH_TEST_SIM_PASSWORD"
LEAD = 8  # seconds from the daemon's start to its first cron fire


def write_config(path: Path, sim: Any, db: Path) -> Path:
    path.write_text(f"""\
[daemon]
database = "sqlite:///{db}"
stop_timeout = "5s"
listen = ""

[[registry]]
name = "sim"
url = "{sim.url}"
username = "{sim.admin[0]}"
password = "${{{PASSWORD_ENV}}}"
requests_per_second = 200.0
burst = 50
max_concurrent_requests = 8
use_harbor_allowlist = true

[[schedule]]
name = "minutely"
cron = "* * * * *"
registries = ["sim"]

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:9/nobody-listens"]

[[route]]
receivers = ["hook"]
min_severity = "None"
events = ["new", "fixed", "fix_available", "severity_up", "severity_down", "reopened"]
""")
    return path


def counts(db: Path) -> tuple[int, int, int]:
    """(change events, outbox messages, ignored open findings) in the history database."""
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(t.finding_event)).scalar()
            messages = conn.execute(select(func.count()).select_from(t.outbox)).scalar()
            ignored = conn.execute(select(func.count()).select_from(t.finding).where(
                t.finding.c.ignored.is_(True), t.finding.c.resolved_at.is_(None))).scalar()
    finally:
        engine.dispose()
    return int(events or 0), int(messages or 0), int(ignored or 0)


def run_once(config: Path, sim: Any) -> None:
    done = subprocess.run([*scanwatch_command(), "run", "--once", "--config", str(config)],
                          env={**_env(), PASSWORD_ENV: sim.admin[1]}, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SCANWATCH_")}


def test_allowlisted_findings_stay_ignored_across_opens_runs_and_a_reload(
    tmp_path: Path, make_sim: Any
) -> None:
    sim = make_sim(projects=2, repositories_per_project=1, artifacts_per_repository=2,
                   scanned_share=1.0, chart_share=0.0, index_share=0.0,
                   vulnerabilities_per_artifact=12)
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db)
    run_once(config, sim)  # first sight: recorded, summarised, nothing announced
    store = open_store(f"sqlite:///{db}")
    try:
        cves = sorted({f.key.vulnerability for f in store.open_findings()})[:3]
    finally:
        store.close()
    assert cves
    sim.control.set_allowlist(None, cves)  # the system list, which projects reuse

    run_once(config, sim)  # reads the allowlist: those findings are marked, no event
    events, messages, ignored = counts(db)
    assert ignored >= len(cves)

    for _ in range(2):  # the store opened and closed, twice
        open_store(f"sqlite:///{db}").close()
    assert counts(db) == (events, messages, ignored)
    run_once(config, sim)
    run_once(config, sim)
    assert counts(db) == (events, messages, ignored)

    # The daemon: start, reload (SIGHUP), then its cron fires once.
    fire = (datetime.now(UTC) + timedelta(seconds=LEAD + 60)).replace(second=0, microsecond=0)
    d = DaemonProcess(driver_command(travel=(fire - timedelta(seconds=LEAD)).isoformat()),
                      ["run", "--config", str(config)], tmp_path,
                      env={PASSWORD_ENV: sim.admin[1]})
    try:
        d.wait_for_event("daemon_ready")
        d.signal(signal.SIGHUP)
        d.wait_for_event("config_reloaded")
        run = d.wait_for_event("run_finished", schedule="minutely")
        assert run["ok"] is True
        d.wait_for_event("alerts_queued")
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0, d.log_tail()
    finally:
        d.close()
    assert counts(db) == (events, messages, ignored)
