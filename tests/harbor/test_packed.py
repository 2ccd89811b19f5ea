"""The walk held packed (``harbor/packed.py``) gives back equal artifacts (issue 11).

The simulator's real listing (indexes with their children and platforms, charts, scanned and
unscanned images, tags with and without pull times), walked by the real client (which packs each
page as it arrives), packed again a project at a time: every artifact equal, in order, and each
page's counts what its artifacts say. Also
times in another zone and naive ones, and an artifact with every field set, so that a field
``Artifact`` gains and ``packed`` forgets fails here instead of vanishing from a walk.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from daemon.harbor import packed
from daemon.harbor.client import HarborClient
from daemon.harbor.inventory import walk
from daemon.model import Artifact, ArtifactRef, ScannerInfo, ScanOverview, ScanState, Tag
from tests.harbor.test_inventory import registry as registry_of


async def test_the_simulators_walk_comes_back_equal_page_by_page(make_sim: Any) -> None:
    sim = make_sim(projects=2, repositories_per_project=3, artifacts_per_repository=70,
                   scanned_share=0.6, index_share=0.2, chart_share=0.1)
    registry = registry_of(sim)
    async with HarborClient(registry) as client:
        inventory = await walk(client, registry)
    walked = list(inventory.each())
    assert len(walked) == inventory.count() > packed.PAGE
    assert any(a.is_index and a.children for a in walked)
    assert any(a.overview is not None for a in walked)
    pages = [page for project in inventory.projects  # one project's artifacts at a time
             for page in packed.pack(packed.unpack(project.pages))]
    assert len(pages) > len(inventory.projects)
    assert list(packed.unpack(pages)) == walked
    for page in pages:
        arts = page.artifacts()
        assert len(page) == len(arts)
        assert page.images == sum(1 for a in arts if a.type.upper() == "IMAGE")
        assert page.children == {(a.ref.repository, c) for a in arts for c in a.children}


def test_every_field_and_every_kind_of_time_comes_back() -> None:
    plus2 = timezone(timedelta(hours=2))
    full = Artifact(
        ArtifactRef("r", "p", "p/repo", "sha256:" + "a" * 64), "IMAGE",
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        (Tag("1.0", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), None),
         Tag("latest", datetime(2026, 1, 2, tzinfo=plus2), datetime(2026, 1, 3))),
        datetime(2025, 12, 31, 23, 59, 59, tzinfo=plus2), datetime(2026, 2, 1), True,
        ScanOverview("report-1", ScanState.SUCCESS, 100, datetime(2026, 1, 1, tzinfo=UTC),
                     datetime(2026, 1, 1, 0, 1, tzinfo=plus2),
                     ScannerInfo("Trivy", "Aqua Security", "v0.50.1"),
                     {"Critical": 1, "High": 2}, 3, 2),
        ("sha256:" + "b" * 64, "sha256:" + "c" * 64), ("linux/amd64", "linux/arm64/v8"), 1234,
        "library/debian", "sha256:" + "d" * 64)
    unset = [f.name for f in dataclasses.fields(Artifact)
             if getattr(full, f.name) == f.default]
    assert unset == [], f"set every field in this test: {unset}"
    back = packed.unpack(packed.pack([full]))
    (again,) = back
    assert again == full
    assert [t.push_time.utcoffset() if t.push_time else None for t in again.tags] == \
        [timedelta(0), timedelta(hours=2)]
    assert again.pull_time is not None and again.pull_time.tzinfo is None
