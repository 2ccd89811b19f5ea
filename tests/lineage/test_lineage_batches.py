"""A run stores the lineage facts it fetches batch by batch (``fetch.BATCH`` images at most),
not all of the registry's at the end: what it holds is one batch, however many images there are,
and the bases found are the same as the simulator's truth."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from daemon.lineage import Image
from daemon.lineage import fetch as lineage_fetch
from daemon.sim import SimOptions, start_simulator
from daemon.store.db import open_store
from tests.lineage.test_lineage_sim import MANIFEST, config, run


def test_facts_are_stored_by_batch_and_the_bases_found_are_the_truth(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lineage_fetch, "BATCH", 3)
    options = SimOptions(seed=2, base_images=2, base_platforms=2, scanned_share=1.0,
                         index_share=0.3)
    with open_store(f"sqlite:///{tmp_path / 'h.db'}") as store, \
            start_simulator(options) as sim:
        saved: list[int] = []
        save = store.save_lineage_facts

        def counted(registry: str, fetched: Iterable[Image], now: Any) -> int:
            batch = list(fetched)
            saved.append(len(batch))
            return save(registry, batch, now)

        monkeypatch.setattr(store, "save_lineage_facts", counted)
        assert run(config(sim), store).ok
        truth = sim.control.lineage()
        manifests = sim.control.stats()["requests"][MANIFEST]
        images, found = store.lineage_view("sim")
    # Every image's facts arrived, in batches of at most 3 (so in many of them).
    assert sum(saved) == len(truth) == len(images)
    assert max(saved) <= 3 and len(saved) >= len(truth) // 3
    assert manifests == len(truth) + 1  # once per digest (and the 401 naming the realm)
    for image in truth:
        want = image["base"]["digest"] if image["base"] else ""
        assert found[image["digest"]].base_digest == want, image["repository"]
