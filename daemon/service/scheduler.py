"""Cron schedules: fire times computed with cronsim, fired by APScheduler 3.x.

APScheduler's own CronTrigger skips runs across spring DST changes and reads day-of-week 0 as
Monday; cronsim has standard crontab semantics and is DST-correct, so the trigger here asks
cronsim for every fire time. Catch-up after downtime (``on_missed``) is decided from the last run
times kept in the database, not from the scheduler's memory, which a restart loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from cronsim import CronSim


def next_fire_times(expr: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, in the schedule's time zone."""
    it = CronSim(expr, after.astimezone(ZoneInfo(tz)))
    return [next(it) for _ in range(count)]


def last_due(expr: str, tz: str, since: datetime, now: datetime) -> datetime | None:
    """The latest fire time in (since, now], or None when none fell due in that window."""
    due = None
    it = CronSim(expr, since.astimezone(ZoneInfo(tz)))
    for t in it:
        if t > now:
            break
        due = t
    return due


@dataclass(frozen=True)
class CatchUp:
    run_now: bool
    missed_at: datetime | None
    reason: str


def decide_catch_up(
    expr: str, tz: str, on_missed: str, last_run: datetime | None, now: datetime,
    started_at: datetime | None = None,
) -> CatchUp:
    """Whether a schedule should run at start because runs were missed while the daemon was down.

    ``last_run`` is when the schedule last started (from the database). With no last run, the
    window starts at the daemon's first start (``started_at`` or ``now``): a new install waits for
    its first fire time instead of running at once. ``run_once`` runs once however many fire times
    were missed; ``skip`` waits for the next one.
    """
    since = last_run if last_run is not None else (started_at or now)
    missed = last_due(expr, tz, since, now)
    if missed is None:
        return CatchUp(False, None, "nothing missed")
    if on_missed == "skip":
        return CatchUp(False, missed, "missed runs skipped (on_missed = skip)")
    return CatchUp(True, missed, "catching up once (on_missed = run_once)")


class CronSimTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger whose fire times come from cronsim, in ``tz``, with jitter."""

    def __init__(self, expr: str, tz: str, jitter: timedelta | None = None) -> None:
        self.expr = expr
        self.tz = ZoneInfo(tz)
        self.jitter = int(jitter.total_seconds()) if jitter else None
        CronSim(expr, datetime.now(self.tz))  # raises on a bad expression

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            start = previous_fire_time.astimezone(self.tz)
        else:
            start = now.astimezone(self.tz) - timedelta(microseconds=1)
        nxt = next(CronSim(self.expr, start))
        return self._apply_jitter(nxt, self.jitter, now)  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return f"cron[{self.expr!r} {self.tz.key}]"

    def __repr__(self) -> str:
        return f"<CronSimTrigger {self.expr!r} tz={self.tz.key!r} jitter={self.jitter}>"


class RegistryLocks:
    """One lock per registry: two schedules touching a registry never run their queues at once.

    Locks are always taken in name order, so two runs over overlapping registry sets cannot
    deadlock.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, names: Iterable[str]) -> AsyncIterator[None]:
        taken: list[asyncio.Lock] = []
        try:
            for name in sorted(set(names)):
                lock = self._locks.setdefault(name, asyncio.Lock())
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()


def make_scheduler() -> AsyncIOScheduler:
    """An AsyncIOScheduler that never runs a job twice at once and folds missed fires into one."""
    return AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )


def add_cron_job(
    scheduler: AsyncIOScheduler,
    job_id: str,
    expr: str,
    tz: str,
    func: Callable[..., Awaitable[Any]],
    *,
    jitter: timedelta | None = None,
    kwargs: dict[str, Any] | None = None,
) -> None:
    scheduler.add_job(
        func,
        CronSimTrigger(expr, tz, jitter),
        id=job_id,
        name=job_id,
        kwargs=kwargs or {},
        replace_existing=True,
    )


def jitter_delay(jitter: timedelta, rng: random.Random | None = None) -> float:
    """A random delay in [0, jitter] seconds, for catch-up runs that APScheduler does not fire."""
    seconds = jitter.total_seconds()
    return (rng or random).uniform(0, seconds) if seconds > 0 else 0.0
