"""Resolving reads the registry's images and writes their lineage a page at a time (issue 11):
a page of a few images gives the same stored lineage, and the same rebuild events, as one page
of them all. A first import and a base pushed again (its new tag makes rebuilds possible),
against the simulator over real HTTP, on a real SQLite file (and on PostgreSQL where
SCANWATCH_TEST_POSTGRES names one)."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.sim import SimOptions, start_simulator
from daemon.store import lineage as lineage_store
from tests.lineage.test_lineage_sim import config, run
from tests.lineage.test_lineage_unchanged import _globs, _rebuild_events, store  # noqa: F401


@pytest.mark.parametrize("page", [3, 100_000])
def test_a_page_of_a_few_images_resolves_as_one_of_them_all(
        store: Any, page: int, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(lineage_store, "READ_PAGE", page)
    options = SimOptions(seed=5, projects=3, base_images=2, base_tags=2, base_platforms=1,
                         scanned_share=1.0, index_share=0.2, chart_share=0.0,
                         scan_seconds=0.05, scanner_concurrency=8)
    with start_simulator(options) as sim:
        cfg = _globs(config(sim, select=("changed", "unscanned", "db_updated")), ("base/*",))
        assert run(cfg, store).ok
        truth = {i["digest"]: i["base"]["digest"] if i["base"] else ""
                 for i in sim.control.lineage()}
        images, found = store.lineage_view("sim")
        assert len(found) == len(images) > 3 * page or page > len(images)
        assert {d: one.base_digest for d, one in found.items()} == truth
        assert sum(1 for one in found.values() if one.base_digest) > 3
        before = _rebuild_events(store)
        sim.control.db_update(added=0.6, fix_released=0.0, rescored=0.0)
        pushed = sim.control.push("base", "debian")
        assert run(cfg, store).ok
        images, found = store.lineage_view("sim")
    assert pushed["digest"] in {i.digest for i in images}
    assert _rebuild_events(store) > before
    assert {d: found[d].base_digest for d in truth} == truth  # the older images' bases stay
