"""The token bucket and the scan caps, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from daemon.scan.ratelimit import TokenBucket, WeightedCap


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    return max(sum(1 for t in stamps if s <= t <= s + width) for s in stamps)


@pytest.mark.parametrize(
    ("rate", "burst", "calls"),
    [
        pytest.param(20, 5, 200, id="20rps-burst5"),
        pytest.param(5, 1, 40, id="5rps-burst1"),
        pytest.param(2, 10, 30, id="burst-larger-than-rate"),
    ],
)
async def test_it_never_exceeds_rate_plus_burst_in_any_second(
    rate: float, burst: int, calls: int
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(calls):
        await bucket.acquire()
        stamps.append(clock.now)
    assert max_in_window(stamps) <= rate + burst
    assert stamps[-1] - stamps[0] >= (calls - burst) / rate
    assert stamps[:burst] == [0.0] * burst  # starts full


async def test_it_pauses_everyone_during_a_hold() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock=clock, sleep=clock.sleep)
    await bucket.acquire()
    bucket.hold(3.0)
    await bucket.acquire()
    assert clock.now >= 3.0


async def test_it_caps_weighted_scans_in_flight() -> None:
    cap = WeightedCap(2)
    assert cap.try_acquire(1)
    assert not cap.try_acquire(2)
    assert cap.try_acquire(1)
    assert not cap.try_acquire(1)
    await cap.release(1)
    await cap.release(1)
    assert cap.try_acquire(5)  # an index wider than the cap takes the whole cap, no more
    assert cap.used == 2
