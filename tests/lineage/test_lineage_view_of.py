"""`findings --by action` reads only the lineage its actions' images need
(``store/lineage.view_of``): the plan it prints, each action's source, base image, build step
and rebuild, is the one the whole registry's lineage gives, on the simulator's images built on
a multi-arch base (image indexes among them) after a newer base tag was pushed; and far fewer
images are read than the registry holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.commands import findings_summary
from daemon.commands.report_actions import action_json
from daemon.lineage.fetch import advisor
from daemon.model import Severity
from daemon.sim import SimOptions, start_simulator
from daemon.store.db import open_store
from daemon.store.findings import FindingQuery
from tests.lineage.test_lineage_sim import config, run


def test_the_plan_attributed_from_its_images_lineage_is_the_whole_registry_s(
        tmp_path: Path) -> None:
    options = SimOptions(seed=3, projects=2, base_images=1, base_tags=1, base_platforms=2,
                         scanned_share=1.0, index_share=0.5, chart_share=0.0,
                         scan_seconds=0.05, scanner_concurrency=8)
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with start_simulator(options) as sim:
            cfg = config(sim, select=("changed", "unscanned", "db_updated"))
            run(cfg, store)
            sim.control.db_update(added=0.6, fix_released=0.0, rescored=0.0)
            pushed = sim.control.push("base", "debian")
            run(cfg, store)
        now = datetime.now(UTC)
        read: list[int] = []
        view_of = store.lineage_view_of

        def counted(registry: str, digests: Any) -> Any:
            images, found = view_of(registry, digests)
            read.append(len(images))
            return images, found

        store.lineage_view_of = counted  # type: ignore[method-assign]
        images, _ = store.lineage_view("sim")
        shown = []
        for query in (FindingQuery(), FindingQuery(project=images[0].project),
                      FindingQuery(min_severity=Severity.CRITICAL)):
            ours = store.finding_actions(query, rules=None, now=now,
                                         lineage=findings_summary.lineage_for(store))
            whole = store.finding_actions(query, rules=None, now=now,
                                          lineage=lambda registry, _: advisor(store, registry))
            assert [action_json(r) for r in ours] == [action_json(r) for r in whole], query
            shown += [action_json(r) for r in ours]
        assert {a["source"] for a in shown} >= {"base", "own"}
        assert any(a["rebuild_on"] == f"base/debian:{pushed['tag']}" for a in shown)
        assert any(a["build_step"] for a in shown)
        assert len(read) == 3 and min(read) < len(images)
    finally:
        store.close()
