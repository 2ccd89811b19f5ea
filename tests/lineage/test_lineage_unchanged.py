"""A run resolves a registry's lineage again only when something it is resolved from changed:
an unchanged rerun reads no image's facts (at 100,000 images they were most of its memory) and
leaves the lineage as it was; a pushed base, a stored report or other ``base_images`` globs
resolve it again, with the right outcome. Against the simulator over real HTTP, on a real
SQLite file (and on PostgreSQL where SCANWATCH_TEST_POSTGRES names one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from daemon.config_types import Config
from daemon.sim import SimOptions, start_simulator
from daemon.store import tables as t
from daemon.store.db import open_store
from tests.lineage.test_lineage_sim import config, run
from tests.pgkit import ADMIN_URL, NOT_SET, fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
        yield s
        s.close()
        return
    if not ADMIN_URL:
        pytest.skip(NOT_SET)
    with fresh_database() as url:
        s = open_store(url)
        yield s
        s.close()


def _counting(store: Any, name: str) -> list[str]:
    calls: list[str] = []
    real = getattr(store, name)

    def counted(registry: str, *args: Any) -> Any:
        calls.append(registry)
        return real(registry, *args)

    setattr(store, name, counted)
    return calls


def _rebuild_events(store: Any) -> int:
    with store.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(t.finding_event)
                                .where(t.finding_event.c.kind == "rebuild_available"))
                   .scalar_one())


def _globs(cfg: Config, globs: tuple[str, ...]) -> Config:
    return dataclasses.replace(cfg, registries=(
        dataclasses.replace(cfg.registries[0], base_images=globs),))


def test_an_unchanged_rerun_reads_no_lineage_and_a_change_resolves_it_again(
        store: Any) -> None:
    options = SimOptions(seed=5, projects=3, base_images=1, base_tags=1, base_platforms=1,
                         scanned_share=1.0, index_share=0.0, chart_share=0.0,
                         scan_seconds=0.05, scanner_concurrency=8)
    resolved = _counting(store, "record_lineage")
    viewed = _counting(store, "lineage_images")  # attribution's read of every image
    with start_simulator(options) as sim:
        cfg = config(sim, select=("changed", "unscanned", "db_updated"))
        assert run(cfg, store).ok
        assert (resolved, viewed) == (["sim"], ["sim"])  # the first sight resolves
        before = store.lineage_view("sim")
        truth = {i["digest"]: i["base"]["digest"] if i["base"] else ""
                 for i in sim.control.lineage()}
        resolved.clear()
        viewed.clear()

        assert run(cfg, store).ok  # nothing changed in Harbor
        assert (resolved, viewed) == ([], [])
        after = store.lineage_view("sim")
        assert after == before
        assert {d: one.base_digest for d, one in after[1].items()} == truth
        assert _rebuild_events(store) == 0

        # Other base_images globs: the same facts, another resolution.
        assert run(_globs(cfg, ("base/*",)), store).ok
        assert resolved == ["sim"]
        resolved.clear()
        assert run(_globs(cfg, ("base/*",)), store).ok
        assert resolved == []

        # A newer base tag, pushed and scanned: resolved again, the rebuild announced.
        sim.control.db_update(added=0.6, fix_released=0.0, rescored=0.0)
        pushed = sim.control.push("base", "debian")
        assert run(_globs(cfg, ("base/*",)), store).ok
        assert resolved == ["sim"]
        images, found = store.lineage_view("sim")
    assert pushed["digest"] in {i.digest for i in images}
    assert _rebuild_events(store) > 0
    assert {d: found[d].base_digest for d in truth} == truth  # the older images' bases stay
