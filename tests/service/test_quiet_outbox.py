"""A quiet outbox does not log every delivery pass at info (the daemon passes every 30 s): a
pass over a real SQLite store with nothing to send logs at debug (a pass that sends logs at
info: tests/service/test_daemon_webhooks.py waits for that line)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from daemon.config_types import Config
from daemon.service.cycle import deliver
from daemon.store.db import open_store


def test_an_idle_delivery_pass_logs_at_debug_only(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with capture_logs() as logs:
            report = asyncio.run(deliver(Config(), store, now_fn=lambda: datetime.now(UTC),
                                         within=None))
    finally:
        store.close()
    assert (report.sent, report.retried, report.dead, report.pending) == (0, 0, 0, 0)
    # (debug lines may be filtered out before capture, as the configured level decides)
    passes = [e for e in logs if e["event"] == "alerts_delivered"]
    assert {e["log_level"] for e in passes} <= {"debug"}, passes
