"""The steps of a run that read the whole walk run beside the event loop (issue 11, point 2).

Unpacking every page of the walk is seconds at 100,000 artifacts; on the loop it would stop
polling of other registries, ``/healthz`` and the systemd watchdog for that long
(``bench/loop.py``: 173–211 ms of worst latency at 10,000 artifacts with them on the loop, 20
ms beside it). A real first import and an unchanged rerun against the simulator, with each
such step wrapped to note the thread it ran on: none may run on the loop's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon.harbor import inventory
from daemon.lineage import fetch
from daemon.scan import run
from daemon.store.db import open_store
from tests.scan.test_run import config_for, run_once

WHOLE_WALK = [(run, "_select"), (run, "not_listed"), (run, "_unscanned"), (run, "_coverage"),
              (inventory, "not_listed"), (fetch, "targets"), (fetch, "_listed_among")]


async def test_no_step_that_reads_the_whole_walk_runs_on_the_loop(
    make_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    def noted(name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(step)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ran.append((name, threading.get_ident() == loop_thread))
            return step(*args, **kwargs)

        return wrapper

    for module, name in WHOLE_WALK:
        monkeypatch.setattr(module, name, noted(f"{module.__name__}.{name}",
                                                getattr(module, name)))
    sim = make_sim(projects=2, repositories_per_project=2, artifacts_per_repository=6,
                   scanned_share=0.7, index_share=0.2, chart_share=0.0,
                   vulnerabilities_per_artifact=2, harbor_version="v2.14.0", scan_seconds=0.02)
    cfg = config_for(sim, requests_per_second=5000.0, burst=1000)
    cfg = replace(cfg, schedules=(replace(cfg.schedules[0], max_scans=3),))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        first = await run_once(cfg, store)
        again = await run_once(cfg, store)
    finally:
        store.close()
    assert first.ok and again.ok
    steps = {name for name, _ in ran}
    # Every step ran (the rerun's guard and the walk's confirmation have known artifacts to
    # set against the listing), and none on the loop's thread.
    assert steps >= {"daemon.scan.run._select", "daemon.scan.run.not_listed",
                     "daemon.scan.run._unscanned", "daemon.scan.run._coverage",
                     "daemon.harbor.inventory.not_listed", "daemon.lineage.fetch.targets"}, steps
    on_loop = sorted({name for name, on in ran if on})
    assert on_loop == [], on_loop
