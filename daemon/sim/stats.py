"""Request statistics of the Harbor API (``/api/v2.0`` only; control calls are never counted)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, int] = {}
            self.status: dict[str, int] = {}
            self.total = 0
            self.in_flight = 0
            self.peak = 0
            self.window: deque[float] = deque()
            self.max_in_1s = 0
            self.scans_triggered = 0
            self.report_fetches = 0
            self.first: float | None = None
            self.last: float | None = None

    def begin(self) -> None:
        now = time.time()
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.window.append(now)
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            self.max_in_1s = max(self.max_in_1s, len(self.window))
            self.total += 1
            if self.first is None:
                self.first = now
            self.last = now

    def leave(self) -> None:
        """A request no longer in flight (``begin``)."""
        with self._lock:
            self.in_flight -= 1

    def count(self, route: str, status: int, *, scan_triggered: bool = False,
              report_fetch: bool = False) -> None:
        """A request answered (``status`` 0: its connection failed first). The server counts
        an answer before its bytes leave: a client that has its answer finds it counted."""
        with self._lock:
            self.requests[route] = self.requests.get(route, 0) + 1
            key = str(status)
            self.status[key] = self.status.get(key, 0) + 1
            self.scans_triggered += scan_triggered
            self.report_fetches += report_fetch

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(sorted(self.requests.items())),
                    "status": dict(sorted(self.status.items())), "total": self.total,
                    "peak_concurrency": self.peak, "max_requests_in_1s": self.max_in_1s,
                    "scans_triggered": self.scans_triggered, "report_fetches": self.report_fetches,
                    "first_request_at": self.first, "last_request_at": self.last}
