"""The one thread that does a Store's database work for the event loop.

Importing 10,000 reports is minutes of SQLite and Python work; on the event loop it would stop
the polling of other registries, ``/healthz`` and the systemd watchdog for as long. ``run`` and
``submit`` hand a call to this thread instead: one thread, so the calls run one at a time and in
the order given (the Store's caches are not shared between threads), and the loop only waits
for a result when it needs one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class DatabaseThread:
    """A single worker thread, started on first use, ended by ``close``."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Queue ``fn(*args, **kwargs)`` behind what is queued already; its future."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scanwatch-db")
        # The caller's context goes along: the lease tokens a write is fenced with (issue 19).
        return self._pool.submit(contextvars.copy_context().run,
                                 functools.partial(fn, *args, **kwargs))

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` on the thread; the loop runs on while it does."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
