"""The garbage collector's policy during a run: full collections that stop every thread briefly.

A full (generation 2) collection walks every container object the process holds, with every
thread waiting on it: during a run that is the walk's artifacts, the scan records, the lineage
being resolved on the database thread, and the daemon itself — 90–400 ms a time at 10,000
artifacts (bench/loop.py), the event loop (``/healthz``, polling, the watchdog) standing still.

``quiet_collections()`` keeps what has already survived two young collections out of the
collector's reach for the length of the run (``gc.freeze()`` after each generation-1 or 2
collection, from a ``gc.callbacks`` hook): a full collection then walks only the objects made
since the last young one. Young garbage is collected as before, and reference counting frees
everything that is not in a cycle; what a cycle kept alive past two collections waits for the
end of the run, when ``gc.unfreeze()`` hands every frozen object back to the collector, so
that nothing is held across runs of a long-running daemon. Runs that overlap (two schedules, a
webhook's small run) share one hook: only the last to end unfreezes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0  # runs inside quiet_collections() now


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    # After a generation-1 (or full) collection its survivors have moved to the oldest
    # generation: out of reach they stay, until the run ends.
    if phase == "stop" and info.get("generation", 0) >= 1:
        gc.freeze()


@contextmanager
def quiet_collections() -> Iterator[None]:
    """For the body's length, objects that outlive two young collections are frozen; at the
    end (of the last overlapping body) every frozen object goes back to the collector."""
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            gc.freeze()  # the daemon's own long-lived objects first
            gc.callbacks.append(_freeze_survivors)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.callbacks.remove(_freeze_survivors)
                gc.unfreeze()
