"""Cron fire times across DST changes, and catch-up after downtime."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.service.scheduler import CronSimTrigger, RegistryLocks, decide_catch_up, next_fire_times

UTC = UTC


def chain(expr: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Fire times as APScheduler asks for them: each from the previous one."""
    trigger = CronSimTrigger(expr, tz)
    out = []
    nxt = trigger.get_next_fire_time(None, start)
    while nxt is not None and nxt < end:
        out.append(nxt)
        nxt = trigger.get_next_fire_time(nxt, nxt)
    return out


# (expr, what it means, days in the window it must fire on, local hour:minute)
DST_WINDOWS = {
    # spring forward and fall back, each zone's own dates
    "Europe/Berlin": [(date(2025, 3, 20), date(2025, 4, 10)),
                      (date(2025, 10, 18), date(2025, 11, 8))],
    "America/New_York": [(date(2025, 3, 2), date(2025, 3, 23)),
                         (date(2025, 10, 26), date(2025, 11, 16))],
}


def days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days)]


CASES = [
    pytest.param("0 0 * * *", lambda d: True, (0, 0), id="daily-midnight"),
    pytest.param("0 2 * * *", lambda d: True, (2, 0), id="daily-0200-in-the-gap"),
    pytest.param("30 1 * * *", lambda d: True, (1, 30), id="daily-0130-repeated-hour"),
    pytest.param("0 0 * * 1", lambda d: d.isoweekday() == 1, (0, 0), id="weekly-monday-midnight"),
    pytest.param("15 4 * * 1-5", lambda d: d.isoweekday() <= 5, (4, 15), id="weekdays"),
    pytest.param("0 9 * * 0", lambda d: d.isoweekday() == 7, (9, 0), id="sunday-is-0"),
    pytest.param("0 0 1 * *", lambda d: d.day == 1, (0, 0), id="monthly-first"),
]


@pytest.mark.parametrize("tz", sorted(DST_WINDOWS))
@pytest.mark.parametrize(("expr", "wanted", "hm"), CASES)
def test_it_fires_exactly_once_per_intended_day_across_dst(expr, wanted, hm, tz):
    zone = ZoneInfo(tz)
    for a, b in DST_WINDOWS[tz]:
        start = datetime.combine(a, datetime.min.time(), zone) - timedelta(minutes=1)
        end = datetime.combine(b, datetime.min.time(), zone)
        fires = chain(expr, tz, start, end)
        per_day = Counter(f.astimezone(zone).date() for f in fires)
        expected = [d for d in days(a, b) if wanted(d)]
        assert sorted(per_day) == expected, f"{expr} in {tz} fired on the wrong days"
        assert all(n == 1 for n in per_day.values()), f"{expr} fired twice on a day: {per_day}"
        for f in fires:
            local = f.astimezone(zone)
            if (local.hour, local.minute) != hm:
                # Only a time inside the spring gap may move, and only forward by the gap's hour.
                assert (local.hour - 1, local.minute) == hm, f"{expr} fired at {local}"


def test_it_lists_next_fire_times_in_the_schedule_zone():
    after = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)
    times = next_fire_times("0 2 * * *", "Europe/Berlin", after, 3)
    assert [t.isoformat() for t in times] == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:00:00+02:00",
        "2025-04-01T02:00:00+02:00",
    ]


def test_it_applies_jitter_within_its_bound():
    trigger = CronSimTrigger("0 2 * * *", "UTC", timedelta(minutes=5))
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    base = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)
    seen = {trigger.get_next_fire_time(None, now) for _ in range(30)}
    assert all(base <= t <= base + timedelta(minutes=5) for t in seen)
    assert len(seen) > 1


CATCH_UP = [
    # last run, now, on_missed, run now?
    pytest.param(datetime(2025, 6, 1, 2, 0), datetime(2025, 6, 3, 9, 0), "run_once", True,
                 id="down-two-nights-runs-once"),
    pytest.param(datetime(2025, 6, 1, 2, 0), datetime(2025, 6, 3, 9, 0), "skip", False,
                 id="down-two-nights-skip"),
    pytest.param(datetime(2025, 6, 3, 2, 0), datetime(2025, 6, 3, 9, 0), "run_once", False,
                 id="nothing-missed"),
    pytest.param(None, datetime(2025, 6, 3, 9, 0), "run_once", False, id="fresh-install-waits"),
]


@pytest.mark.parametrize(("last", "now", "on_missed", "run"), CATCH_UP)
def test_it_catches_up_after_downtime_as_configured(last, now, on_missed, run):
    last = last.replace(tzinfo=UTC) if last else None
    decision = decide_catch_up("0 2 * * *", "UTC", on_missed, last, now.replace(tzinfo=UTC))
    assert decision.run_now is run


async def test_it_never_runs_two_queues_on_one_registry_at_once():
    import asyncio

    locks = RegistryLocks()
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def run(names):
        async with locks.hold(names):
            for n in names:
                active[n] += 1
                peak[n] = max(peak[n], active[n])
            await asyncio.sleep(0.01)
            for n in names:
                active[n] -= 1

    await asyncio.gather(run(["a", "b"]), run(["b", "a"]), run(["b"]), run(["c"]))
    assert max(peak.values()) == 1
