"""A full schedule run against the Harbor simulator: policy, faults and rate limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.config_types import (
    ALL_LANES,
    Config,
    DaemonConfig,
    RegistryConfig,
    ScheduleConfig,
    Secret,
)
from daemon.errors import CredentialsRejected
from daemon.model import ChangeKind, ScanState
from daemon.scan.queue import QueueOptions
from daemon.scan.run import RunResult, run_schedule
from daemon.sim import FAULT_KINDS, FaultRule
from daemon.store.db import open_store

FAST = QueueOptions(poll_initial=0.05, poll_max=0.3, early_error_window=0.3)


def now() -> datetime:
    return datetime.now(UTC)


def config_for(sim: Any, **registry: Any) -> Config:
    settings: dict[str, Any] = {
        "requests_per_second": 400.0, "burst": 50, "max_concurrent_requests": 8,
        "max_scans_in_flight": 8, "max_retries": 6,
    }
    settings.update(registry)
    reg = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                         password=Secret(sim.admin[1], "literal"), **settings)
    sched = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",),
                           select=ALL_LANES, types=("IMAGE", "CHART"))
    return Config(daemon=DaemonConfig(max_scans_in_flight=50), registries=(reg,),
                  schedules=(sched,))


async def run_once(cfg: Config, store: Any) -> RunResult:
    return await run_schedule(cfg, store, cfg.schedules[0], trigger="once", now_fn=now,
                              options=FAST)


def top_level_in_flight(sim: Any) -> set[str]:
    engine = sim.state.engine
    with sim.state.lock:
        scans = [*engine.pending, *engine.waiting, *engine.active]
        tops = set()
        for art, _scan in scans:
            top = art.parents[0] if art.parents and not art.tags else art
            tops.add(top.digest)
        return tops


class Sampler:
    """Samples the simulator's in-flight scans in a thread while a run goes on."""

    def __init__(self, sample: Callable[[], int]) -> None:
        self.peak = 0
        self._sample = sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.002)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_it_scans_what_the_policy_asks_once_and_keeps_every_report(
    make_sim: Any, tmp_path: Path
) -> None:
    sim = make_sim(seed=3, projects=3, repositories_per_project=4, artifacts_per_repository=25,
                   scanned_share=0.6, index_share=0.15, chart_share=0.1, scan_seconds=0.02,
                   scanner_concurrency=16, job_workers=32, vulnerabilities_per_artifact=5)
    before = sim.control.inventory()
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    cfg = config_for(sim, max_scans_in_flight=16)

    result = await run_once(cfg, store)

    run = result.registries[0]
    stats = sim.control.stats()
    after = sim.control.inventory()
    assert result.ok
    assert before["artifacts"] >= 300
    unscanned = before["scannable"] - before["scanned"]
    assert run.triggered == unscanned == stats["scans_triggered"]
    assert stats["requests"].get(
        "POST /projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/scan"
    ) == unscanned  # never one twice, never one on a chart
    assert "400" not in stats["status"] and "409" not in stats["status"]
    assert after["scanned"] == after["scannable"]
    records = store.scan_records("sim")
    successes = {d for d, r in records.items() if r.state is ScanState.SUCCESS}
    assert len(successes) == after["scannable"]
    assert len(store.known_report_ids("sim")) == after["scannable"]

    sim.control.reset_stats()
    again = await run_once(cfg, store)
    assert again.registries[0].triggered == 0
    assert sim.control.stats()["report_fetches"] == 0


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_it_completes_through_faults_and_records_nothing_false(
    make_sim: Any, tmp_path: Path, kind: str
) -> None:
    fault = FaultRule(kind=kind, rate=0.05, delay=0.2, retry_after=1)
    sim = make_sim(seed=5, projects=2, repositories_per_project=2, artifacts_per_repository=6,
                   scanned_share=0.5, index_share=0.2, chart_share=0.1, scan_seconds=0.02,
                   scanner_concurrency=8, vulnerabilities_per_artifact=5, faults=(fault,))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    cfg = config_for(sim, max_retries=8, timeout=__import__("datetime").timedelta(seconds=5))

    first = await run_once(cfg, store)
    sim.control.set_faults([])
    second = await run_once(cfg, store)

    assert first.ok and second.ok
    assert first.changes and ChangeKind.FIXED.value not in first.kinds() | second.kinds()
    inventory = sim.control.inventory()
    records = store.scan_records("sim")
    successes = [r for r in records.values() if r.state is ScanState.SUCCESS]
    assert len(successes) == inventory["scannable"]
    # every stored report is the one Harbor holds: none was stored empty because of a fault
    assert len(store.known_report_ids("sim")) >= inventory["scannable"]


async def test_it_holds_the_rate_limit_and_the_scan_cap(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(seed=7, projects=2, repositories_per_project=3, artifacts_per_repository=8,
                   scanned_share=0.3, index_share=0.2, chart_share=0.1, scan_seconds=0.05,
                   scanner_concurrency=8, vulnerabilities_per_artifact=3)
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    cfg = config_for(sim, requests_per_second=20.0, burst=5, max_scans_in_flight=2)

    with Sampler(lambda: len(top_level_in_flight(sim))) as sampler:
        result = await run_once(cfg, store)

    stats = sim.control.stats()
    assert result.ok and result.registries[0].triggered > 4
    # 20 rps + a burst of 5 allow 25 sends in any second; the simulator counts arrivals, and
    # on a loaded machine one request sent just before a window can arrive inside it.
    assert stats["max_requests_in_1s"] <= 25 + 1
    assert 1 <= sampler.peak <= 2


async def test_it_scans_nothing_where_the_scanner_is_down(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(seed=2, projects=2, repositories_per_project=2, artifacts_per_repository=4,
                   scanned_share=0.5, scan_seconds=0.02)
    sim.control.set_adapter(False)
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")

    result = await run_once(config_for(sim), store)

    run = result.registries[0]
    assert result.ok
    assert run.triggered == 0 and run.imported == 0
    assert set(run.unavailable) == set(sim.control.inventory()["per_project"])
    assert all("scanner unavailable" in why for why in run.unavailable.values())
    assert sim.control.stats()["scans_triggered"] == 0


async def test_a_registry_that_takes_no_credentials_sits_out_the_run(
    make_sim: Any, tmp_path: Path
) -> None:
    # Both registries log in as admin: Harbor's lock of a name after a failed login
    # (frozenTime) would refuse the good one too whenever its login came just after the bad
    # one's, a race of the two registries' logins; without the lock the outcome is the one
    # under test.
    sim = make_sim(seed=2, projects=1, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, login_freeze=0.0)
    base = config_for(sim)
    good = base.registries[0]
    bad = replace(good, name="stale", password=Secret("not-the-password", "literal"))
    cfg = replace(base, registries=(good, bad),
                  schedules=(replace(base.schedules[0], registries=("sim", "stale")),))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")

    result = await run_once(cfg, store)

    [failed] = result.failed
    assert failed.registry == "stale"
    assert failed.error == ("stale: Harbor accepted no credentials for admin: wrong password, "
                            "or locked for 1.5 s after a failed login?")
    assert "not-the-password" not in failed.error
    assert store.present_artifacts("stale") == [] and store.scan_records("stale") == {}
    ok = next(r for r in result.registries if r.registry == "sim")
    assert ok.imported > 0 and store.present_artifacts("sim")
    last = store.last_run("nightly")
    assert last is not None and last.result == "failed" and "stale:" in last.detail


async def test_a_run_whose_every_registry_takes_no_credentials_records_nothing(
    make_sim: Any, tmp_path: Path
) -> None:
    sim = make_sim(seed=2, projects=1, repositories_per_project=1, artifacts_per_repository=1)
    base = config_for(sim)
    cfg = replace(base, registries=(replace(base.registries[0],
                                            password=Secret("nope", "literal")),))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    with pytest.raises(CredentialsRejected, match="Harbor accepted no credentials for admin"):
        await run_once(cfg, store)
    assert store.last_run("nightly") is None
