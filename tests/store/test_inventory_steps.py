"""``record_inventory`` records a walk a few repositories at a time, in one transaction.

What one step loads and writes is bounded (``inventory.RECORD_STEP`` artifacts), whatever the
size of the registry; the walk is still one unit: the same delta and rows as one big step, and a
step that fails leaves nothing of the walk written (no artifact removed, no tag moved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from daemon.model import Artifact
from daemon.store import inventory
from daemon.store import tables as t
from daemon.store.db import Store, open_store
from tests.store.store_helpers import REG, artifact, at

REPOS = [f"svc-{n}" for n in range(6)]


def walk(version: str, *, drop: str = "", bad: str = "") -> list[Artifact]:
    """Three images in each of REPOS (one tagged ``latest``); ``drop`` loses its first image,
    ``bad`` gets one whose size no database integer holds (a broken listing)."""
    out = []
    for repo in REPOS:
        for n in range(3):
            if repo == drop and n == 0:
                continue
            digest = f"sha256:{repo}-{version if n == 2 else 'old'}-{n}"
            out.append(artifact(digest, "latest" if n == 2 else f"1.{n}", repository=repo))
    if bad:
        import dataclasses

        out.append(dataclasses.replace(artifact(f"sha256:{bad}-huge", "x", repository=bad),
                                       size=2 ** 70))
    return out


def rows(store: Store) -> list[tuple[Any, ...]]:
    a, tg = t.artifact.c, t.tag.c
    with store.reading() as conn:
        arts = conn.execute(select(a.digest, a.removed_at, a.last_seen).order_by(a.digest))
        tags = conn.execute(select(tg.name, tg.digest, tg.since, tg.until)
                            .order_by(tg.digest, tg.name, tg.since))
        return [tuple(r) for r in arts] + [tuple(r) for r in tags]


def statement_sizes(store: Store) -> list[int]:
    """The number of rows of each statement that reaches the driver (executemany: its sets)."""
    sizes: list[int] = []

    def seen(_conn: Any, _cursor: Any, _statement: str, params: Any, _context: Any,
             executemany: bool) -> None:
        sizes.append(len(params) if executemany else 1)

    event.listen(store.engine, "before_cursor_execute", seen)
    return sizes


def record_twice(path: Path, step: int, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[Store, Any, list[int]]:
    monkeypatch.setattr(inventory, "RECORD_STEP", step)
    store = open_store(f"sqlite:///{path}")
    sizes = statement_sizes(store)
    store.record_inventory(REG, walk("v1"), at(0))
    delta = store.record_inventory(REG, walk("v2", drop="svc-1"), at(1))
    return store, delta, sizes


def test_a_walk_is_recorded_in_bounded_steps_with_the_delta_of_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, whole_delta, whole_sizes = record_twice(tmp_path / "whole.db", 10_000, monkeypatch)
    steps, steps_delta, steps_sizes = record_twice(tmp_path / "steps.db", 4, monkeypatch)
    with whole, steps:
        # 6 repositories × 3 images: one step inserts them all in one statement; steps of 4
        # write no statement of more than a repository's worth beyond the step.
        assert max(whole_sizes) == 18
        assert max(steps_sizes) <= 4 + 3
        assert rows(steps) == rows(whole)
        for name in ("new", "moved", "deleted", "untagged"):
            assert sorted(map(str, getattr(steps_delta, name))) == \
                sorted(map(str, getattr(whole_delta, name))), name
        # each repository's ``latest`` moved to a new image; the old one and svc-1's first
        # image are gone
        assert len(steps_delta.deleted) == 7 and len(steps_delta.moved) == 6
        assert len(steps_delta.new) == 6


def test_a_step_that_fails_leaves_nothing_of_the_walk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory, "RECORD_STEP", 3)
    with open_store(f"sqlite:///{tmp_path / 'h.db'}") as store:
        store.record_inventory(REG, walk("v1"), at(0))
        before = rows(store)
        # svc-0 (the first step) loses an image and moves its tags; the last repository's
        # step holds a value the database refuses: nothing of the walk may stay written.
        with pytest.raises(OverflowError):
            store.record_inventory(REG, walk("v2", drop="svc-0", bad=REPOS[-1]), at(1))
        assert rows(store) == before
        assert store.present_artifacts(REG)  # nothing removed
        assert len(store.present_artifacts(REG)) == len(walk("v1"))
