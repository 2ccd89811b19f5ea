"""The rescan trickle (pure, table-driven): a run's budget from what the registry allows, the
rescan order (known exploited, recently used, then fixable Critical/High, then the oldest
report), and whether
coverage keeps up with the scanner DB's daily update."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.config_types import RegistryConfig, ScheduleConfig, Secret
from daemon.model import Artifact, ArtifactRef, ScanOverview, ScanState, Tag
from daemon.scan import trickle
from daemon.scan.select import select

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DB = NOW - timedelta(hours=6)
HOUR = timedelta(hours=1)


def registry(**kw: object) -> RegistryConfig:
    return RegistryConfig(name="prod", url="https://harbor.example.test", username="u",
                          password=Secret("p", "literal"), **kw)  # type: ignore[arg-type]


def schedule(**kw: object) -> ScheduleConfig:
    base: dict[str, object] = {"name": "s", "cron": "0 * * * *", "registries": ("prod",),
                               "select": ("db_updated",)}
    base.update(kw)
    return ScheduleConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("limits", "scan_time", "scans", "bound_by"), [
    # 20 req/s ÷ 3 calls a scan = 6.67/s; 10 in flight ÷ 1 s = 10/s: the rate limit binds.
    pytest.param({"requests_per_second": 20.0, "max_scans_in_flight": 10},
                 timedelta(seconds=1), int(20 / 3 * 3600 * 0.8), "rate limit", id="rate"),
    # 2 in flight ÷ 30 s = 0.067/s: far below the rate limit's 3.3/s.
    pytest.param({"requests_per_second": 10.0, "max_scans_in_flight": 2},
                 timedelta(seconds=30), int(2 / 30 * 3600 * 0.8), "scans in flight",
                 id="in-flight"),
    pytest.param({"requests_per_second": 10.0, "max_scans_in_flight": 2}, None,
                 int(2 / 30 * 3600 * 0.8), "scans in flight", id="never-timed-30s"),
])
def test_the_budget_follows_the_registrys_limits(limits: dict[str, object],
                                                 scan_time: timedelta | None, scans: int,
                                                 bound_by: str) -> None:
    got = trickle.budget(registry(**limits), schedule(), scan_time=scan_time, window=HOUR)
    assert (got.scans, got.bound_by) == (scans, bound_by)


def test_a_fixed_max_scans_replaces_the_computed_budget() -> None:
    got = trickle.budget(registry(), schedule(max_scans=25), scan_time=None, window=HOUR)
    assert (got.scans, got.bound_by) == (25, "max_scans")


@pytest.mark.parametrize(("fires", "timeout", "window"), [
    pytest.param([NOW, NOW + HOUR], timedelta(hours=6), HOUR, id="until-the-next-run"),
    pytest.param([NOW, NOW + timedelta(days=1)], timedelta(hours=6), timedelta(hours=6),
                 id="at-most-the-run-timeout"),
    pytest.param([], timedelta(hours=6), timedelta(hours=6), id="no-cron"),
])
def test_a_runs_window(fires: list[datetime], timeout: timedelta, window: timedelta) -> None:
    assert trickle.run_window(fires, timeout) == window


def art(digest: str, repo: str, *, ended_days: float, pushed_days: float = 60,
        pulled_days: float | None = None) -> Artifact:
    return Artifact(ArtifactRef("prod", "p", repo, digest), "IMAGE", tags=(Tag("v1"),),
                    push_time=NOW - timedelta(days=pushed_days),
                    pull_time=NOW - timedelta(days=pulled_days) if pulled_days else None,
                    scannable=True,
                    overview=ScanOverview(f"rep-{digest}", ScanState.SUCCESS,
                                          end_time=NOW - timedelta(days=ended_days)))


def test_rescans_go_recently_used_then_most_fixable_severe_then_oldest_report() -> None:
    artifacts = [art("old", "quiet", ended_days=9), art("older", "quiet", ended_days=12),
                 art("severe", "risky", ended_days=2), art("pulled", "quiet", ended_days=1,
                                                           pulled_days=1),
                 art("pushed", "quiet", ended_days=1.5, pushed_days=3)]
    picked = select(artifacts, {}, schedule=schedule(), db_updated_at={"p": DB}, now=NOW,
                    budget=4, severe={("p", "risky"): 7, ("p", "quiet"): 0})
    assert [p.artifact.ref.digest for p in picked.scans] == ["pushed", "pulled", "severe",
                                                             "older"]
    # The run's budget cut the last one: it is still behind, and the next run takes it first.
    assert picked.over_budget == 1 and picked.behind_db == 5
    assert picked.oldest_behind == NOW - timedelta(days=12)


def test_a_known_exploited_cve_raises_an_image_above_every_other_rescan() -> None:
    artifacts = [art("pulled", "quiet", ended_days=1, pulled_days=1),
                 art("severe", "risky", ended_days=2), art("exploited", "kev", ended_days=1),
                 art("older", "quiet", ended_days=12)]
    picked = select(artifacts, {}, schedule=schedule(), db_updated_at={"p": DB}, now=NOW,
                    budget=4, severe={("p", "risky"): 7, ("p", "kev"): 1},
                    kev={("p", "kev"): 1})
    assert [p.artifact.ref.digest for p in picked.scans] == ["exploited", "pulled", "severe",
                                                             "older"]


@pytest.mark.parametrize(("behind", "per_run", "interval", "keeps_up"), [
    pytest.param(95_000, 1_000, HOUR, False, id="95-runs-hourly-is-4-days"),
    pytest.param(95_000, 24_000, HOUR, True, id="4-hourly-runs"),
    pytest.param(0, 1, timedelta(days=1), True, id="nothing-behind"),
])
def test_it_says_when_coverage_cannot_keep_up(behind: int, per_run: int,
                                              interval: timedelta, keeps_up: bool) -> None:
    coverage = trickle.Coverage("prod", 100_000, behind, NOW - timedelta(days=3))
    run_budget = trickle.Budget(per_run, 10.0, interval, "rate limit", timedelta(seconds=1))
    message = trickle.falling_behind(coverage, run_budget, interval)
    assert (message == "") is keeps_up
    if not keeps_up:
        assert message.startswith(f"registry prod: {behind} of 100000 images have reports "
                                  f"older than the scanner DB; at {per_run} rescans a run")
        assert "raise max_scans_in_flight or requests_per_second" in message


def test_cover_time_counts_whole_runs_then_the_last_runs_own_time() -> None:
    coverage = trickle.Coverage("prod", 10, 25, None)
    run_budget = trickle.Budget(10, 2.0, HOUR, "rate limit", timedelta(seconds=1))
    # Two full runs an hour apart, then 5 scans at 2/s.
    assert trickle.cover_time(coverage, run_budget, HOUR) == 2 * HOUR + timedelta(seconds=2.5)
