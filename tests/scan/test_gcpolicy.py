"""The collector's policy during a run: survivors frozen out of full collections while it
lasts, every one handed back to the collector when it ends (nothing held across runs)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

from daemon.model import ScanState
from daemon.scan.gcpolicy import _freeze_survivors, quiet_collections
from daemon.store.db import open_store
from tests.scan.test_run import config_for, run_once


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_a_cycle_that_outlives_a_young_collection_waits_for_the_end_then_is_freed() -> None:
    assert gc.get_freeze_count() == 0
    with quiet_collections():
        node = Node()
        gone = weakref.ref(node)
        gc.collect(1)  # node survives it: frozen
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()  # a full collection does not reach it now
        assert gone() is not None
    assert gc.get_freeze_count() == 0
    assert _freeze_survivors not in gc.callbacks
    gc.collect()
    assert gone() is None  # reclaimed once the run is over


def test_young_garbage_is_still_collected_during_the_run() -> None:
    with quiet_collections():
        node = Node()
        gone = weakref.ref(node)
        del node
        gc.collect(0)
        assert gone() is None


def test_overlapping_runs_keep_survivors_frozen_until_the_last_one_ends() -> None:
    outer = quiet_collections()
    outer.__enter__()
    try:
        with quiet_collections():
            pass
        assert gc.callbacks.count(_freeze_survivors) == 1  # one hook for both, still there
        node = Node()
        gone = weakref.ref(node)
        gc.collect(1)
        del node
        gc.collect()
        assert gone() is not None
    finally:
        outer.__exit__(None, None, None)
    assert gc.get_freeze_count() == 0 and _freeze_survivors not in gc.callbacks
    gc.collect()
    assert gone() is None


class FreezeWatcher:
    """Reads the freeze count at each stage of a run (a watcher of stages, daemon/scan/watch.py)."""

    def __init__(self) -> None:
        self.frozen: list[int] = []

    def __call__(self, job: Any) -> None:
        pass

    def stage(self, registry: str, stage: str, count: int) -> None:
        self.frozen.append(gc.get_freeze_count())


async def test_two_runs_freeze_while_running_and_hand_everything_back(
    make_sim: Any, tmp_path: Path
) -> None:
    sim = make_sim(seed=5, projects=2, repositories_per_project=3, artifacts_per_repository=20,
                   scanned_share=0.5, scan_seconds=0.02, scanner_concurrency=16,
                   vulnerabilities_per_artifact=5)
    store = open_store(f"sqlite:///{tmp_path / 'gc.db'}")
    cfg = config_for(sim, max_scans_in_flight=16)
    from daemon.scan.run import run_schedule
    from tests.scan.test_run import FAST, now

    try:
        for _ in range(2):
            watcher = FreezeWatcher()
            result = await run_schedule(cfg, store, cfg.schedules[0], trigger="once",
                                        now_fn=now, options=FAST, on_progress=watcher)
            assert result.ok
            assert watcher.frozen and min(watcher.frozen) > 0  # the run's objects were frozen
            assert gc.get_freeze_count() == 0  # and all handed back
            assert _freeze_survivors not in gc.callbacks
        records = store.scan_records("sim")
        assert records and all(r.state is ScanState.SUCCESS for r in records.values())
        assert (await run_once(cfg, store)).registries[0].triggered == 0
    finally:
        store.close()
