"""A repository's images rescanned under a ``max_scans`` budget of half of them, across runs,
after a scanner DB update: each (finding, change) reaches each receiver once, however many
images and runs report it (issue 12, "repeat-free").

The issue's case is 200 images under ``max_scans = 100``; the suite runs 60 under 30 (the same
shape, within the suite's time budget). ``SCANWATCH_PARTIAL_IMAGES=200`` runs the issue's size.

Real parts: the Harbor simulator over HTTP, the real run cycle (scan, store, queue), delivery to
a real JSON webhook on 127.0.0.1, and a real SQLite file; counted from outside, on what the
webhook received.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alertkit import sim_config
from hookkit import Hook

from daemon.alerts.deliver import deliver_pending
from daemon.config_types import ReceiverConfig, RouteConfig, ScheduleConfig, Secret
from daemon.model import Severity
from daemon.scan.queue import QueueOptions
from daemon.service.cycle import run_cycle
from daemon.store import outbox as store_outbox
from daemon.store.db import open_store

FAST = QueueOptions(poll_initial=0.02, poll_max=0.1, early_error_window=0.1)
IMAGES = int(os.environ.get("SCANWATCH_PARTIAL_IMAGES", "60"))


async def test_each_finding_change_reaches_each_receiver_once_across_partial_rescans(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(seed=5, projects=1, repositories_per_project=1,
                   artifacts_per_repository=IMAGES, scanned_share=1.0, index_share=0.0,
                   chart_share=0.0, cnab_share=0.0, scan_seconds=0.01, scanner_concurrency=64,
                   job_workers=16, vulnerabilities_per_artifact=8)
    hook = Hook()
    try:
        receivers = tuple(ReceiverConfig(name, (Secret(
            f"json://127.0.0.1:{hook.port}/{name}", "literal"),)) for name in ("a", "b"))
        schedule = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",),
                                  select=("changed", "unscanned", "failed", "db_updated"),
                                  max_scans=IMAGES // 2)
        cfg = sim_config(sim, registry={"max_scans_in_flight": 64}, schedules=(schedule,),
                         receivers=receivers, routes=(RouteConfig(
                             ("a", "b"), name="all", min_severity=Severity.NONE),))
        store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
        clock = [datetime.now(UTC)]

        def now() -> datetime:
            return clock[0]

        async def cycle() -> Any:
            clock[0] += timedelta(minutes=1)
            done = await run_cycle(cfg, store, schedule, trigger="once", now_fn=now,
                                   options=FAST)
            report = await deliver_pending(store, cfg, now_fn=now)
            assert report.dead == 0 and report.pending == 0
            return done

        try:
            await cycle()  # first sight: every image's report imported, nothing announced
            before = len(hook.bodies)
            changes = sim.control.db_update(added=0.3, fix_released=0.3, rescored=0.2)
            assert changes["added"] and changes["fix_released"] and changes["rescored"]
            runs = [await cycle() for _ in range(3)]
            triggered = [sum(reg.triggered for reg in r.run.registries) for r in runs]
            # The budget splits the repository's rescans over two runs; the third has none.
            assert triggered[0] == IMAGES // 2 and sum(triggered) == IMAGES, triggered
            assert all(r.message_ids for r in runs[:2]), "both partial runs sent something"
        finally:
            store_rows = store_outbox.listing(store)
            store.close()
        # One POST per outbox row, each sent once (counted at the webhook).
        assert len(hook.bodies) == len(store_rows) == sum(r.status == "sent" for r in store_rows)
        bodies = list(zip(hook.paths[before:], hook.bodies[before:], strict=True))
        told: dict[str, Counter[tuple[str, str, str, str]]] = {"/a": Counter(), "/b": Counter()}
        for path, body in bodies:
            doc = json.loads(body["message"])
            seen_here = set()
            for section in ("fix_now", "no_fix"):
                for action in doc[section]:
                    for v in action["vulnerabilities"]:
                        value = (v["fix_version"] or "") if v["change"] == "fix_available" \
                            else v["severity"] if v["change"] == "severity_changed" else ""
                        seen_here.add((v["id"], action["package"], v["change"], value))
            told[path].update(seen_here)
        for path, counts in told.items():
            assert counts, f"{path} heard of nothing"
            again = {k: n for k, n in counts.items() if n > 1}
            assert not again, f"{path} was told these twice: {sorted(again)[:5]}"
        assert told["/a"] == told["/b"]
        kinds = {k[2] for k in told["/a"]}
        assert {"new", "fix_available", "severity_changed"} <= kinds, kinds
    finally:
        hook.shutdown()
