"""The rescan trickle: how many scans a run may start, from what the registry allows, and
whether that covers the registry between two updates of the scanner's DB. Pure: ``now`` and
every measurement come in as arguments.

The budget of a run is the scans the registry can take in the run's window: the slower of the
scans in flight (``max_scans_in_flight`` ÷ the observed scan time) and the rate limit
(``requests_per_second`` ÷ the calls a scan costs: its trigger, its share of the polls and its
report), over the time until the schedule next fires (at most the daemon's ``run_timeout``),
at :data:`SHARE` of it so that the walk and the fresh lanes keep room. A schedule that sets
``max_scans`` gets that fixed number instead.

Coverage is the share of images whose report is older than the scanner's DB (the
``db_updated`` lane before the budget cuts it) and the oldest such report. A registry keeps up
when the runs between two DB updates (:data:`DB_UPDATE_EVERY`, Trivy's daily rebuild) can
rescan what is behind; when they cannot, the run says so with the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from daemon.config_types import RegistryConfig, ScheduleConfig

CALLS_PER_SCAN = 3.0  # trigger, report fetch, and (batched, about) one poll
SHARE = 0.8
DEFAULT_SCAN_TIME = timedelta(seconds=30)  # before history has timed a scan here
DB_UPDATE_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Budget:
    scans: int  # scans a run may start
    per_second: float  # the rate it assumes
    window: timedelta  # the run's time: until the next fire, at most run_timeout
    bound_by: str  # "rate limit", "scans in flight" or "max_scans"
    scan_time: timedelta

    def time_for(self, scans: int) -> timedelta:
        """How long ``scans`` take at this budget's rate."""
        if scans <= 0:
            return timedelta(0)
        return timedelta(seconds=scans / max(self.per_second, 1e-9))


@dataclass(frozen=True)
class Coverage:
    registry: str
    images: int  # scannable images with a report
    behind: int  # of those, reports older than the scanner's DB
    oldest: datetime | None  # the oldest report among those behind

    @property
    def share_behind(self) -> float:
        return self.behind / self.images if self.images else 0.0


def run_window(next_fires: list[datetime], run_timeout: timedelta) -> timedelta:
    """The time one run has: between its schedule's next two fire times, at most
    ``run_timeout`` (a schedule without a cron, a webhook's small run: ``run_timeout``)."""
    if len(next_fires) >= 2:
        return min(run_timeout, next_fires[1] - next_fires[0])
    return run_timeout


def budget(registry: RegistryConfig, schedule: ScheduleConfig, *,
           scan_time: timedelta | None, window: timedelta) -> Budget:
    """The scans one run of ``schedule`` may start on ``registry``."""
    took = scan_time if scan_time is not None and scan_time > timedelta(0) else DEFAULT_SCAN_TIME
    by_flight = max(1, registry.max_scans_in_flight) / took.total_seconds()
    by_rate = registry.requests_per_second / CALLS_PER_SCAN
    rate = min(by_flight, by_rate)
    bound = "rate limit" if by_rate <= by_flight else "scans in flight"
    if schedule.max_scans is not None:
        return Budget(schedule.max_scans, rate, window, "max_scans", took)
    return Budget(max(1, math.floor(rate * window.total_seconds() * SHARE)), rate, window,
                  bound, took)


def cover_time(coverage: Coverage, run_budget: Budget, interval: timedelta) -> timedelta:
    """How long rescanning what is behind takes: runs of ``run_budget.scans`` each,
    ``interval`` apart (the last one's own time counted at the budget's rate)."""
    if coverage.behind <= 0:
        return timedelta(0)
    per_run = max(1, run_budget.scans)
    full_runs, rest = divmod(coverage.behind, per_run)
    if rest == 0:
        full_runs, rest = full_runs - 1, per_run
    return interval * full_runs + run_budget.time_for(rest)


def falling_behind(coverage: Coverage, run_budget: Budget, interval: timedelta,
                   updates_every: timedelta = DB_UPDATE_EVERY) -> str:
    """One line when the trickle cannot rescan what is behind before the DB's next update
    ("" when it can)."""
    needed = cover_time(coverage, run_budget, interval)
    if needed <= updates_every:
        return ""
    return (f"registry {coverage.registry}: {coverage.behind} of {coverage.images} images have "
            f"reports older than the scanner DB; at {run_budget.scans} rescans a run "
            f"({run_budget.bound_by}) every {_span(interval)}, covering them takes "
            f"{_span(needed)}, longer than the DB's update every {_span(updates_every)}: "
            + ("raise or unset the schedule's max_scans" if run_budget.bound_by == "max_scans"
               else "raise max_scans_in_flight or requests_per_second, or run the schedule "
                    "more often"))


def coverage_line(record: Mapping[str, Any]) -> str:
    """A run's coverage (``RegistryRun.coverage_record``) in one line: how much is behind the
    scanner's DB, the oldest such report, and how long covering it takes at the run's budget."""
    images, behind = int(record.get("images") or 0), int(record.get("behind_db") or 0)
    if not behind:
        return f"all {images} images have reports from the newest scanner DB"
    oldest = str(record.get("oldest_behind") or "")[:10]
    budget = record.get("budget") if record.get("rescans", True) else None
    took = timedelta(seconds=float(record.get("cover_seconds") or 0.0))
    return (f"{behind} of {images} images ({behind / images:.0%}) have reports older than the "
            f"scanner DB" + (f", the oldest from {oldest}" if oldest else "")
            + (f"; at {budget} rescans a run ({record.get('bound_by')}) covering them takes "
               f"{_span(took)}" if budget else "; this run's schedule does not rescan them "
               "(its select has no db_updated lane)"))


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
