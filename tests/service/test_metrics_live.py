"""`/metrics` counters move during a run, not only at its end: a real daemon process, its
listener scraped over HTTP while a slow simulated scanner keeps the run going."""

from __future__ import annotations

import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon_driver import WAIT, DaemonProcess
from prometheus_client.parser import text_string_to_metric_families
from test_daemon_process import schedule_toml, start, write_config

from daemon.store.db import open_store

IMAGES = 3


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=WAIT) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(found: dict[Any, float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items()
               if n == name and all((k, val) in ls for k, val in labels.items()))


def test_scan_counters_move_while_the_run_is_still_going(tmp_path: Path,
                                                         make_sim: Any) -> None:
    # One scan at a time, 0.6 s each, one in flight: the run lasts about IMAGES seconds.
    sim = make_sim(seed=4, projects=1, repositories_per_project=1,
                   artifacts_per_repository=IMAGES, scanned_share=0.0, index_share=0.0,
                   chart_share=0.0, scan_seconds=0.6, scanner_concurrency=1)
    db = tmp_path / "h.db"
    config = write_config(tmp_path / "config.toml", sim, db, schedule_toml("nightly"),
                          listen="127.0.0.1:0", registry="max_scans_in_flight = 1")
    store = open_store(f"sqlite:///{db}")  # a run long ago: the daemon catches up at once
    long_ago = datetime.now(UTC) - timedelta(days=2)
    store.record_run_finish(store.record_run_start("nightly", long_ago), long_ago, "ok")
    store.close()
    d: DaemonProcess = start(tmp_path, sim, config)
    try:
        base = f"http://127.0.0.1:{d.wait_for_event('http_listening')['port']}"
        d.wait_for_event("run_started", schedule="nightly")
        mid = d.wait_until(lambda: (s := samples(base)) and total(
            s, "scanwatch_scans_finished_total", outcome="complete") >= 1 and s,
            "a finished scan counted on /metrics")
        # Mid-run: no run counted yet, some scans still to go.
        assert total(mid, "scanwatch_runs_total") == 0, d.log_tail()
        assert 1 <= total(mid, "scanwatch_scans_triggered_total", registry="sim") < IMAGES + 1
        assert total(mid, "scanwatch_scans_finished_total", outcome="complete") < IMAGES
        assert not d.logged("run_finished")
        d.wait_for_event("run_finished", schedule="nightly")
        end = d.wait_until(lambda: (s := samples(base)) and total(
            s, "scanwatch_runs_total") == 1 and s, "the run counted")
        # The end adds what was not counted live, nothing twice.
        assert total(end, "scanwatch_scans_triggered_total", registry="sim") == IMAGES
        assert total(end, "scanwatch_scans_finished_total", outcome="complete") == IMAGES
        d.signal(signal.SIGTERM)
        assert d.wait_exit() == 0, d.log_tail()
    finally:
        d.close()
