"""Per-registry limits in front of every Harbor call: a token bucket and a concurrency cap.

The bucket holds ``burst`` tokens, starts full and refills at ``requests_per_second``. So over any
one-second window the registry sees at most ``requests_per_second + burst`` of our requests, and a
run of N calls spans at least ``(N - burst) / requests_per_second`` seconds.

The bucket refills 2 % slower than the configured rate: our send time is not the registry's
receipt time, and that margin keeps network jitter from pushing one window over the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from daemon.config_types import RegistryConfig

JITTER_MARGIN = 0.98


class TokenBucket:
    """An asyncio token bucket. ``acquire()`` waits for one token; callers are served in order."""

    def __init__(
        self,
        rate: float,
        capacity: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate * JITTER_MARGIN
        self.capacity = max(1, capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.capacity)
        self._stamp = clock()
        self._held_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        # The lock makes waiters queue up in order: a late caller never overtakes an early one.
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._held_until:
                    await self._sleep(self._held_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0 - 1e-9:  # float dust must not spin the loop
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a registry's ``Retry-After`` applies to all our calls)."""
        if seconds > 0:
            self._held_until = max(self._held_until, self._clock() + seconds)
            # Tokens do not pile up while held: after the pause we restart from an empty bucket.
            self._refill(self._clock())
            self._tokens = 0.0
            self._stamp = self._held_until


class RegistryLimiter:
    """Everything that paces one registry: the bucket and the concurrent-request cap."""

    def __init__(
        self,
        requests_per_second: float,
        burst: int,
        max_concurrent_requests: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bucket = TokenBucket(requests_per_second, burst, clock=clock, sleep=sleep)
        self._slots = asyncio.Semaphore(max(1, max_concurrent_requests))

    @classmethod
    def for_registry(cls, registry: RegistryConfig) -> RegistryLimiter:
        return cls(registry.requests_per_second, registry.burst, registry.max_concurrent_requests)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a concurrency slot and spend one token: wrap exactly one HTTP attempt."""
        async with self._slots:
            await self.bucket.acquire()
            yield

    def hold(self, seconds: float) -> None:
        self.bucket.hold(seconds)


class WeightedCap:
    """A cap on scans in flight where one trigger may count for several (an index's children)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.used = 0
        self._cond = asyncio.Condition()

    def weight(self, wanted: int) -> int:
        return max(1, min(wanted, self.capacity))

    async def acquire(self, weight: int = 1) -> None:
        weight = self.weight(weight)
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + weight <= self.capacity)
            self.used += weight

    def try_acquire(self, weight: int = 1) -> bool:
        weight = self.weight(weight)
        if self.used + weight <= self.capacity:
            self.used += weight
            return True
        return False

    async def release(self, weight: int = 1) -> None:
        weight = self.weight(weight)
        async with self._cond:
            self.used = max(0, self.used - weight)
            self._cond.notify_all()
