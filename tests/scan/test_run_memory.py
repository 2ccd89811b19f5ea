"""A run holds a bounded part of the registry at a time, whatever its size (issue 11).

A real ``run --once`` (first import, then an unchanged rerun) against the simulator at two
sizes, counting the live ``Artifact`` objects at each step of the run (the walk recorded, each
import batch, the history read for selection, each batch of lineage facts, the run's end) and
the live lineage ``Image`` objects that hold a build history while every image is resolved.
Held whole, the walk is every artifact and the resolution every image's history; held packed
and read a page at a time, a step holds a few pages, the same at four times the size.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon import lineage
from daemon.harbor.packed import PAGE
from daemon.model import Artifact, ChangeEvent, ScanRecord
from daemon.store import lineage as lineage_store
from daemon.store.db import Store, open_store
from tests.scan.test_run import config_for, run_once

SAMPLED = ("record_inventory", "known_reports_among", "scan_records", "record_scans",
           "save_lineage_facts", "record_run_finish")
# A page being unpacked, an import batch and the one before it (let go as the next is read),
# what a step keeps of them: the same at any size (292 at both sizes here; 1,205 held whole).
BOUND = 4 * PAGE


def live(kind: type, where: Callable[[Any], bool] = lambda o: True) -> int:
    """How many ``kind`` objects are alive. A run keeps what survived young collections
    frozen (``scan/gcpolicy.py``), out of ``gc.get_objects``' sight: counted with them."""
    gc.unfreeze()
    try:
        return sum(1 for o in gc.get_objects() if type(o) is kind and where(o))
    finally:
        gc.freeze()


def with_history(image: Any) -> bool:
    return bool(image.steps) and image.steps is not lineage._HAD_STEPS


class Peaks:
    """The most live artifacts seen at any sampled step, and the most live images with
    their build history while the registry's lineage is resolved."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.artifacts = 0
        self.images = 0
        self.samples = 0
        self.records = 0  # scan records (selection's), at the sampled steps
        self.events = 0  # change events (the run's), at the sampled steps
        self.lineages = 0  # resolved lineage without a base, while resolving
        monkeypatch.setattr(lineage_store, "READ_PAGE", PAGE)
        for name in SAMPLED:
            monkeypatch.setattr(Store, name, self._sampling(getattr(Store, name)))
        one = lineage._Table.one
        calls = [0]

        def sampled_one(table: Any, image: Any, host: str) -> Any:
            calls[0] += 1
            if calls[0] % 50 == 0:
                self.images = max(self.images, live(lineage.Image, with_history))
                self.lineages = max(self.lineages,
                                    live(lineage.Lineage, lambda o: not o.base_digest))
            return one(table, image, host)

        monkeypatch.setattr(lineage._Table, "one", sampled_one)

    def _sampling(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def sampled(*args: Any, **kwargs: Any) -> Any:
            self.samples += 1
            self.artifacts = max(self.artifacts, live(Artifact))
            self.records = max(self.records, live(ScanRecord))
            self.events = max(self.events, live(ChangeEvent))
            return method(*args, **kwargs)

        return sampled


async def measured(make_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   per_repository: int) -> tuple[int, Peaks]:
    sim = make_sim(projects=3, repositories_per_project=4,
                   artifacts_per_repository=per_repository, scanned_share=0.95,
                   index_share=0.0, chart_share=0.0, vulnerabilities_per_artifact=2,
                   harbor_version="v2.14.0", scan_seconds=0.02)
    cfg = config_for(sim, requests_per_second=5000.0, burst=1000)
    cfg = replace(cfg, schedules=(replace(cfg.schedules[0], max_scans=5),))
    peaks = Peaks(monkeypatch)
    store = open_store(f"sqlite:///{tmp_path / f'{per_repository}.db'}")
    try:
        first = await run_once(cfg, store)
        again = await run_once(cfg, store)
    finally:
        store.close()
    assert first.ok and again.ok
    assert first.registries[0].imported > 0 and again.registries[0].imported == 0
    return first.registries[0].artifacts, peaks


async def test_it_holds_a_few_pages_of_the_registry_whatever_its_size(
    make_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        small, at_small = await measured(make_sim, tmp_path, patched, 25)
    with monkeypatch.context() as patched:
        large, at_large = await measured(make_sim, tmp_path, patched, 100)
    assert (small, large) == (300, 1200)
    assert at_small.samples > 10 and at_large.samples > at_small.samples
    # Held whole, a step would hold every artifact (1,200) and resolving every image's
    # history (1,140): held packed, a step holds what a few pages unpack, at either size.
    assert at_large.artifacts <= BOUND, at_large.artifacts
    assert at_large.artifacts <= at_small.artifacts + PAGE
    assert at_large.images <= PAGE, at_large.images
    assert at_large.images <= at_small.images + PAGE
    # Selection reads the scan records of a page of the walk at a time (1,140 held whole,
    # through the scans), the run counts its changes (a first import's 1,140 first-sight
    # events were held to its end), and resolving writes each page of lineage as it comes
    # (every image's was held): a page or two of each, at either size.
    assert at_large.records <= 2 * PAGE, at_large.records
    assert at_large.events <= 2 * PAGE, at_large.events
    assert at_large.lineages <= 2 * PAGE, at_large.lineages
    assert at_small.records and at_small.events and at_small.lineages
