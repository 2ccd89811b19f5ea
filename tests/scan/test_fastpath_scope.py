"""A webhook's small run against the Harbor simulator over real HTTP and a real SQLite file: it
walks only the repositories its events name (a few calls, not the registry's listing), records
the pushed image and its scan, leaves the rest of history as it was, and an event about an
artifact or repository that does not exist records nothing, and neither does one whose
credentials Harbor refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.config_types import Config, DaemonConfig, RegistryConfig, ScheduleConfig, Secret
from daemon.errors import CredentialsRejected
from daemon.scan.fastpath import scopes, webhook_schedule
from daemon.scan.queue import QueueOptions
from daemon.scan.run import run_schedule
from daemon.service.hooks import HookEvent
from daemon.store.db import open_store

FAST = QueueOptions(poll_initial=0.05, poll_max=0.3, early_error_window=0.3)
MISSING = "sha256:" + "0d" * 32


def now() -> datetime:
    return datetime.now(UTC)


def setup(sim: Any, tmp_path: Path) -> tuple[Config, Any]:
    reg = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                         password=Secret(sim.admin[1], "literal"), requests_per_second=400.0,
                         burst=50, max_scans_in_flight=8)
    sweep = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",))
    cfg = Config(daemon=DaemonConfig(max_scans_in_flight=50), registries=(reg,),
                 schedules=(sweep,))
    return cfg, open_store(f"sqlite:///{tmp_path / 'h.db'}")


def event(kind: str, repository: str, digest: str) -> HookEvent:
    return HookEvent("sim", kind, repository.split("/", 1)[0], repository, (digest,), 0)


async def small_run(cfg: Config, store: Any, events: list[HookEvent]) -> Any:
    ((name, scope),) = scopes(cfg, events).items()
    registry = cfg.registry(name)
    assert registry is not None
    return await run_schedule(cfg, store, webhook_schedule(registry), trigger="webhook",
                              now_fn=now, options=FAST, scope=scope)


async def test_a_small_run_walks_only_the_pushed_repository(tmp_path: Path,
                                                            make_sim: Any) -> None:
    sim = make_sim(seed=9, projects=4, repositories_per_project=5, artifacts_per_repository=4,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.1,
                   harbor_version="v2.14.0")
    cfg, store = setup(sim, tmp_path)
    await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now, options=FAST)
    before = {r.digest for r in store.present_artifacts("sim")}
    pushed = sim.control.push()
    sim.control.reset_stats()
    run = await small_run(cfg, store, [event("PUSH_ARTIFACT", pushed["repository"],
                                             pushed["digest"])])
    reg = run.registries[0]
    assert run.ok and reg.triggered + reg.followed >= 1
    requests = sim.control.stats()["requests"]
    listings = {k: v for k, v in requests.items() if k.endswith("/artifacts")}
    # One repository listed on its own: no project-wide listing, no project list, nothing of
    # the 19 other repositories.
    assert list(listings) == ["GET /projects/{project_name}/repositories/{repository_name}"
                              "/artifacts"], requests
    assert listings[next(iter(listings))] == 1
    assert "GET /projects" not in requests
    assert sum(requests.values()) < 15, requests
    assert reg.artifacts == 5  # the repository's four and the pushed one
    present = {r.digest for r in store.present_artifacts("sim")}
    assert present == before | {pushed["digest"]}
    record = store.scan_records("sim")[pushed["digest"]]
    assert record.state.finished and record.report_id


async def test_an_event_about_an_artifact_that_does_not_exist_records_nothing(
        tmp_path: Path, make_sim: Any) -> None:
    sim = make_sim(seed=9, projects=2, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.1)
    cfg, store = setup(sim, tmp_path)
    await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now, options=FAST)
    present = store.present_artifacts("sim")
    project, repository = present[0].project, f"{present[0].project}/{present[0].repository}"
    scans = store.scan_records("sim")
    for events in ([event("SCANNING_COMPLETED", repository, MISSING)],
                   [event("PUSH_ARTIFACT", f"{project}/never-pushed", MISSING)]):
        run = await small_run(cfg, store, events)
        reg = run.registries[0]
        assert run.ok and reg.triggered == 0 and reg.imported == 0 and reg.changes == 0
        assert store.present_artifacts("sim") == present
        assert store.scan_records("sim") == scans


async def test_a_small_run_with_credentials_harbor_refuses_records_nothing(
        tmp_path: Path, make_sim: Any) -> None:
    sim = make_sim(seed=9, projects=1, repositories_per_project=1, artifacts_per_repository=2,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.1)
    cfg, store = setup(sim, tmp_path)
    await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now, options=FAST)
    present, scans = store.present_artifacts("sim"), store.scan_records("sim")
    runs = store.last_run("webhook:sim")
    pushed = sim.control.push()
    wrong = replace(cfg, registries=(replace(cfg.registries[0],
                                             password=Secret("not-the-password", "literal")),))
    with pytest.raises(CredentialsRejected, match="^sim: Harbor accepted no credentials") as e:
        await small_run(wrong, store, [event("PUSH_ARTIFACT", pushed["repository"],
                                             pushed["digest"])])
    assert "not-the-password" not in str(e.value)
    assert store.present_artifacts("sim") == present and store.scan_records("sim") == scans
    assert store.last_run("webhook:sim") == runs  # not even a run recorded
