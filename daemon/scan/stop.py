"""A stop request, handed down from the signal handler to every scan queue of a run.

Once it is made (SIGTERM or SIGINT), no queue triggers another scan; the scans already triggered
are followed until the request's deadline (``[daemon] stop_timeout`` after the signal) and then
left running in Harbor, where the next start follows them. A second signal moves the deadline to
now. It is passed in, never global, so that a test or a second daemon in one process has its own.
All methods are called on the event loop (the signal handlers run there too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class StopRequest:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requested = asyncio.Event()
        self._deadline_moved = asyncio.Event()
        self.deadline: float | None = None  # monotonic; set with the request
        self.reason = ""

    def request(self, grace: float, reason: str) -> bool:
        """Stop starting work and follow what runs for ``grace`` seconds more. A repeated
        request ends the following at once; returns True for the first one only."""
        if self._requested.is_set():
            self.deadline = self._clock()
            self._deadline_moved.set()
            return False
        self.deadline = self._clock() + max(0.0, grace)
        self.reason = reason
        self._requested.set()
        return True

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def expired(self) -> bool:
        """Past the deadline: what is still in flight is left to Harbor."""
        return self.deadline is not None and self._clock() >= self.deadline

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - self._clock())

    async def wait(self) -> None:
        await self._requested.wait()

    async def nap(self, seconds: float) -> None:
        """Sleep ``seconds``, but wake when a stop arrives (the caller must stop triggering at
        once), and never sleep past the deadline or beyond a second signal."""
        if not self.requested:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._requested.wait(), seconds)
            return
        limit = min(seconds, self.remaining() or 0.0)
        if limit > 0 and not self._deadline_moved.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deadline_moved.wait(), limit)
