"""Each feed's state as kept: version, age, staleness (for ``intel status``, the metrics and
the digest's "feed is stale" line). Pure over the stored rows but for the one read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from daemon.config_checks import format_duration
from daemon.config_types import FeedConfig

if TYPE_CHECKING:
    from daemon.store.db import Store


@dataclass(frozen=True, slots=True)
class FeedState:
    name: str
    source: str
    version: str
    fetched_at: str  # ISO, "" for never
    age_seconds: float | None
    stale: bool
    last_error: str

    @property
    def age_text(self) -> str:
        from datetime import timedelta

        if self.age_seconds is None:
            return "-"
        return format_duration(timedelta(seconds=int(self.age_seconds)))

    def as_dict(self) -> dict[str, Any]:
        return {"feed": self.name, "source": self.source, "version": self.version or None,
                "fetched_at": self.fetched_at or None, "age_seconds": self.age_seconds,
                "stale": self.stale, "last_error": self.last_error or None}


def state_of(feed: FeedConfig, row: Any, now: datetime) -> FeedState:
    """A feed is stale when its good copy is older than ``stale_after``, or there is none."""
    fetched = row.fetched_at if row is not None else None
    age = (now - fetched).total_seconds() if fetched is not None else None
    return FeedState(feed.name, feed.url, row.version if row else "",
                     fetched.isoformat() if fetched else "", age,
                     age is None or age > feed.stale_after.total_seconds(),
                     row.last_error if row else "")


def feed_states(store: Store, feeds: Sequence[FeedConfig], now: datetime) -> list[FeedState]:
    from daemon.store import intel as store_intel

    with store.engine.connect() as conn:
        return [state_of(f, store_intel.load(conn, f.name, body=False), now) for f in feeds]


def stale_notices(states: Sequence[FeedState]) -> tuple[str, ...]:
    """One line per stale feed, for the next digest."""
    out = []
    for s in states:
        if not s.stale:
            continue
        if s.age_seconds is None:
            out.append(f"feed {s.name} has no good copy yet ({s.source})"
                       + (f": {s.last_error}" if s.last_error else ""))
        else:
            out.append(f"feed {s.name} is stale: its last good copy ({s.version}) is "
                       f"{s.age_text} old" + (f"; last error: {s.last_error}"
                                              if s.last_error else ""))
    return tuple(out)
