"""The daemon's own runs refuse credentials Harbor takes for none, and record nothing.

``scanwatch run`` as a real process, starting with a catch-up run of a schedule, against the
simulator over HTTP with a wrong password, after a first good run left findings in the SQLite
file (see tests/commands/test_credentials.py for the commands a user runs).
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon_driver import DaemonProcess, scanwatch_command
from runkit import REGISTRY, World, snapshot

from daemon.store.db import open_store


def test_the_daemons_run_is_refused_and_records_nothing(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(seed=2, projects=2, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=0.5, index_share=0.0, chart_share=0.0, scan_seconds=0.1)
    world = World(sim, tmp_path, "admin", sim.admin[1], next(iter(sim.robots)))
    # A run of the daemon's schedule that ended long ago: the daemon starts with a catch-up.
    store = open_store(f"sqlite:///{world.cli.database}")
    long_ago = datetime.now(UTC) - timedelta(days=2)
    store.record_run_finish(store.record_run_start("daily", long_ago), long_ago, "ok")
    store.close()
    world.cli.config.write_text(world.cli.config.read_text() + '\n[[schedule]]\nname = "daily"\n'
                                f'cron = "0 3 * * *"\nregistries = ["{REGISTRY}"]\n')
    before = snapshot(world.cli.database)
    daemon = DaemonProcess(scanwatch_command(), ["run", "--config", str(world.cli.config)],
                           tmp_path, env={"HARBOR_SECRET": "not-the-password"}, notify=False)
    try:
        failed = daemon.wait_for_event("run_failed", schedule="daily")
        assert failed["error"] == (f"{REGISTRY}: Harbor accepted no credentials for admin: "
                                   "wrong password, or locked for 1.5 s after a failed login?")
        assert "not-the-password" not in "\n".join(daemon.lines)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0, daemon.log_tail()
    finally:
        daemon.close()
    assert snapshot(world.cli.database) == before
