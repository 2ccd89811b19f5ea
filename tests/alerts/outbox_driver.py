"""A scanwatch process for the crash tests: queue and/or deliver, then exit (or be killed).

Usage: python outbox_driver.py DB_URL PORT PHASES   (PHASES: "queue", "deliver", "queue,deliver")
``SCANWATCH_TEST_CRASH_AT`` (before_commit, after_queue, before_mark) makes it SIGKILL itself.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from daemon.alerts.deliver import deliver_pending
from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.config_types import Config, ReceiverConfig, RouteConfig, Secret
from daemon.store.db import open_store

NOW = datetime(2026, 3, 2, 2, 10, tzinfo=UTC)


def main() -> int:
    url, port, phases = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    config = Config(
        receivers=(ReceiverConfig("secops", (Secret(f"json://127.0.0.1:{port}/hook", "x"),)),
                   ReceiverConfig("ops", (Secret(f"json://127.0.0.1:{port}/ops", "x"),))),
        routes=(RouteConfig(("secops", "ops"), name="sec", events=("new", "scan_failed")),))
    store = open_store(url)
    out: dict[str, object] = {}
    if "queue" in phases:
        out["queued"] = build_and_queue(store, config, run_context=RunContext(name="nightly"),
                                        now=NOW)
    if "deliver" in phases:
        report = asyncio.run(deliver_pending(store, config, now_fn=lambda: NOW))
        out["sent"] = report.sent
    store.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
