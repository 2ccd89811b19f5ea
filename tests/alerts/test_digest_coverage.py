"""The next digest says when the rescans fall behind the scanner's DB, with the numbers its last
run measured (a real SQLite store, the run's summary as `scan/run.py` records it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alertkit import seeded_store

from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.config_types import Config, ReceiverConfig, RegistryConfig, RouteConfig, Secret
from daemon.scan.run import RegistryRun, RunResult
from daemon.store import outbox as store_outbox
from tests.store.store_helpers import at

NOW = at(1) + timedelta(minutes=10)


def test_the_digest_carries_the_falling_behind_line_of_the_last_run(tmp_path: Path) -> None:
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        run = RunResult("nightly", "schedule", NOW - timedelta(hours=2), NOW - timedelta(hours=1))
        run.registries = [RegistryRun("prod-harbor", images=5000, behind_db=4200, budget=1000,
                                      bound_by="max_scans", cover_seconds=4 * 86400.0,
                                      oldest_behind=NOW - timedelta(days=9),
                                      falling_behind="registry prod-harbor: 4200 of 5000 images "
                                                     "have reports older than the scanner DB")]
        run_id = store.record_run_start("nightly", run.started_at)
        store.record_run_finish(run_id, run.finished_at, "ok")
        store.record_run_summary(run_id, run.summary(0))
        url = Secret("json://127.0.0.1:9/hook", "literal")
        config = Config(registries=(RegistryConfig("prod-harbor", "https://h.example", "u",
                                                   url),),
                        receivers=(ReceiverConfig("secops", (url,)),),
                        routes=(RouteConfig(("secops",), name="daily", group="digest",
                                            digest_cron="0 8 * * *", events=("new",)),))
        ctx = RunContext(name="nightly")
        assert build_and_queue(store, config, run_context=ctx, now=NOW) == []  # clock starts
        [queued] = build_and_queue(store, config, run_context=ctx, now=NOW + timedelta(days=1))
        [row] = store_outbox.listing(store)
        assert row.message_id == queued and row.payload["kind"] == "digest"
        assert "4200 of 5000 images have reports older than the scanner DB" in \
            row.payload["body"]
    finally:
        store.close()
