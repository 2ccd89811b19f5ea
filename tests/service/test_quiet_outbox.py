"""A quiet outbox does not log every delivery pass at info (the daemon passes every 30 s): a
pass over a real SQLite file with nothing to send, in a process of its own logging at debug as
JSON, writes its ``alerts_delivered`` line at debug (a pass that sends logs at info:
tests/service/test_daemon_webhooks.py waits for that line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PASS = """
import asyncio, sys
from datetime import UTC, datetime
from daemon import log
from daemon.config_types import Config
from daemon.service.cycle import deliver
from daemon.store.db import open_store

log.configure("debug")
store = open_store(sys.argv[1])
report = asyncio.run(deliver(Config(), store, now_fn=lambda: datetime.now(UTC), within=None))
store.close()
print(report.sent, report.retried, report.dead, report.pending)
"""


def test_an_idle_delivery_pass_logs_at_debug_only(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PASS, f"sqlite:///{tmp_path / 'h.db'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "0", "0"]
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    passes = [e["level"] for e in events if e["event"] == "alerts_delivered"]
    assert passes == ["debug"], done.stderr
