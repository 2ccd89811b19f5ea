"""Harbor's CVE allowlists, read during a run when use_harbor_allowlist = true, hide findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.config_types import Config, DaemonConfig, RegistryConfig, ScheduleConfig, Secret
from daemon.scan.queue import QueueOptions
from daemon.scan.run import run_schedule
from daemon.store.db import open_store

FAST = QueueOptions(poll_initial=0.05, poll_max=0.3, early_error_window=0.3)


def now() -> datetime:
    return datetime.now(UTC)


def config_for(sim: Any, use: bool) -> Config:
    reg = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                         password=Secret(sim.admin[1], "literal"), requests_per_second=400.0,
                         burst=50, use_harbor_allowlist=use)
    sched = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",))
    return Config(daemon=DaemonConfig(), registries=(reg,), schedules=(sched,))


def open_ids(store: Any, *, ignored: bool) -> dict[str, set[str]]:
    """Open CVE ids per project, among the ignored or the not ignored findings."""
    out: dict[str, set[str]] = {}
    for row in store.open_findings(include_ignored=True):
        if row.ignored == ignored:
            out.setdefault(row.key.project, set()).add(row.key.vulnerability)
    return out


@pytest.fixture
def sim(make_sim):
    return make_sim(projects=2, repositories_per_project=1, artifacts_per_repository=2,
                    scanned_share=1.0, chart_share=0.0, index_share=0.0,
                    vulnerabilities_per_artifact=15)


def cves_of(store: Any, project: str) -> list[str]:
    return sorted({r.key.vulnerability for r in store.open_findings(include_ignored=True)
                   if r.key.project == project})


@pytest.mark.parametrize(
    ("scope", "expires_in", "hidden"),
    [
        pytest.param("project", None, True, id="project-list"),
        pytest.param("system", None, True, id="system-list-reused"),
        pytest.param("project", timedelta(days=-1), False, id="expired-list-ignored"),
    ],
)
async def test_it_marks_allowlisted_findings_ignored(tmp_path, sim, scope, expires_in, hidden):
    probe = open_store(f"sqlite:///{tmp_path / 'probe.db'}")
    await run_schedule(config_for(sim, use=False), probe, config_for(sim, False).schedules[0],
                       trigger="once", now_fn=now, options=FAST)
    project = sorted(open_ids(probe, ignored=False))[0]
    chosen = cves_of(probe, project)[:2]
    assert chosen, "the simulated project has findings to allow-list"
    expires = (now() + expires_in).timestamp() if expires_in is not None else None
    if scope == "project":
        sim.control.set_allowlist(project, chosen, expires, reuse_system=False)
    else:
        sim.control.set_allowlist(None, chosen, expires)  # projects reuse it by default

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    cfg = config_for(sim, use=True)
    await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now, options=FAST)
    ignored = open_ids(store, ignored=True).get(project, set())
    visible = open_ids(store, ignored=False).get(project, set())
    if hidden:
        assert ignored == set(chosen) and not (visible & set(chosen))
    else:
        assert not ignored and set(chosen) <= visible


async def test_it_leaves_findings_alone_when_allowlists_are_not_used(tmp_path, sim):
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    cfg = config_for(sim, use=False)
    await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now, options=FAST)
    chosen = cves_of(store, sorted(open_ids(store, ignored=False))[0])[:2]
    sim.control.set_allowlist(None, chosen)
    await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now, options=FAST)
    assert not open_ids(store, ignored=True)
