"""One refresh of one feed, end to end: fetch (conditional), validate, keep, diff onto the open
findings, queue the alerts that follow. Called by the daemon's feed jobs and by
``scanwatch intel refresh``.

A feed that cannot be fetched or parsed keeps the last good copy: the failure is recorded on
its row, logged as one ``feed_failed`` line, and returned; it never raises into a run. Database
work goes through the store's worker thread; the fetch itself is bounded by the feed's timeout
and retry budget, so it runs beside scan work without holding it up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from daemon import log
from daemon.config_types import Config, FeedConfig
from daemon.errors import FeedError
from daemon.intel import changes, epss, fetch, kev
from daemon.intel.changes import IntelEvent

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    feed: str
    outcome: str  # "updated", "unchanged", "failed"
    version: str = ""
    requests: int = 0
    events: int = 0
    message_ids: tuple[str, ...] = ()
    error: str = ""
    fetched_at: datetime | None = None  # of the copy in force (None: there is none)


def parse(feed: str, body: bytes, where: str) -> Any:
    return kev.parse(body, where) if feed == "kev" else epss.parse(body, where)


def version_of(parsed: Any) -> str:
    if isinstance(parsed, kev.KevCatalog):
        return parsed.version
    return f"{parsed.score_date} ({parsed.model_version})".strip()


def _events(feed: FeedConfig, before: Any, after: Any, conn: Any) -> list[IntelEvent]:
    """The events a new copy raises, with the carriers of each (pure rules in ``changes``)."""
    from daemon.store import intel as store_intel

    if isinstance(after, kev.KevCatalog):
        delta = kev.delta(before, after)
        cves = {e.cve for e in (*delta.added, *delta.removed)}
        events = changes.kev_events(delta, store_intel.open_findings_for(conn, cves),
                                    after.version)
    else:
        if before is None:
            return []
        open_cves = store_intel.open_cves(conn)
        pct = feed.epss_percentile
        crossed = epss.crossings(before, after, open_cves,
                                 pct if pct is not None else feed.epss_threshold,
                                 by_percentile=pct is not None)
        events = changes.epss_events(crossed, store_intel.open_findings_for(conn, crossed),
                                     after.score_date)
    return [changes.with_digests(e, store_intel.carrier_digests(
        conn, e.hit.repository_id, e.hit.vulnerability)) for e in events]


def _keep(store: Store, feed: FeedConfig, parsed: Any, got: fetch.Fetched, now: datetime
          ) -> int:
    """Store the new copy and its events in one transaction; return the event count."""
    from daemon.store import intel as store_intel

    assert got.body is not None
    with store.engine.begin() as conn:
        old = store_intel.load(conn, feed.name)
        before = None
        if old is not None and old.body is not None:
            try:
                before = parse(feed.name, old.body, f"stored {feed.name}")
            except FeedError:  # a copy kept by an older, laxer scanwatch: a fresh baseline
                before = None
        events = _events(feed, before, parsed, conn)
        if isinstance(parsed, kev.KevCatalog):
            store_intel.replace_kev(conn, parsed)
        else:
            store_intel.replace_epss(conn, parsed)
        store_intel.save_good(conn, feed.name, source=feed.url, version=version_of(parsed),
                              etag=got.etag, last_modified=got.last_modified, body=got.body,
                              now=now)
        return store_intel.record_events(conn, events, now)


def stored_fetched_at(store: Store, name: str) -> datetime | None:
    """When the copy in force of feed ``name`` was fetched (None: there is none)."""
    row = _stored(store, name)
    return row.fetched_at if row is not None else None


def _stored(store: Store, name: str) -> Any:
    from daemon.store import intel as store_intel

    with store.engine.connect() as conn:
        return store_intel.load(conn, name, body=False)


def _fail(store: Store, feed: FeedConfig, error: str, now: datetime) -> None:
    from daemon.store import intel as store_intel

    with store.engine.begin() as conn:
        store_intel.save_failure(conn, feed.name, feed.url, error, now)


async def refresh(config: Config, store: Store, feed: FeedConfig, *,
                  now_fn: Callable[[], datetime], queue_alerts: bool = True,
                  transport: Any = None, sleep: Any = None) -> RefreshResult:
    """Refresh ``feed``; never raises for a feed problem (see the module docstring)."""
    old = await store.thread.run(_stored, store, feed.name)
    extra = {k: v for k, v in (("transport", transport), ("sleep", sleep)) if v is not None}
    try:
        got = await fetch.fetch(feed, etag=old.etag if old and old.fetched_at else "",
                                last_modified=old.last_modified if old and old.fetched_at
                                else "", **extra)
        if got.body is None:
            from daemon.store import intel as store_intel

            def unchanged() -> None:
                with store.engine.begin() as conn:
                    store_intel.save_unchanged(conn, feed.name, now)

            now = now_fn()
            await store.thread.run(unchanged)
            _log.info("feed_unchanged", feed=feed.name, version=old.version if old else "")
            return RefreshResult(feed.name, "unchanged", old.version if old else "",
                                 got.requests, fetched_at=now)
        parsed = await store.thread.run(parse, feed.name, got.body, f"feed {feed.name} "
                                        f"({feed.url})")
    except FeedError as exc:
        await store.thread.run(_fail, store, feed, str(exc), now_fn())
        kept = old.version if old and old.fetched_at else "none"
        _log.warning("feed_failed", feed=feed.name, error=str(exc), kept_version=kept)
        return RefreshResult(feed.name, "failed", kept, error=str(exc),
                             fetched_at=old.fetched_at if old else None)
    now = now_fn()
    count = await store.thread.run(_keep, store, feed, parsed, got, now)
    version = version_of(parsed)
    _log.info("feed_updated", feed=feed.name, version=version, events=count)
    ids: list[str] = []
    if count and queue_alerts:
        ids = await store.thread.run(queue, config, store, now)
    return RefreshResult(feed.name, "updated", version, got.requests, count, tuple(ids),
                         fetched_at=now)


def queue(config: Config, store: Store, now: datetime) -> list[str]:
    """Queue the alerts for what the feed change recorded, as a run's end would."""
    from daemon.alerts.group import RunContext
    from daemon.alerts.outbox import build_and_queue

    ctx = RunContext(name="intel", registry_urls={r.name: r.url for r in config.registries})
    return build_and_queue(store, config, run_context=ctx, now=now)


async def refresh_vex(store: Store, source: Any, *, now_fn: Callable[[], datetime],
                      transport: Any = None) -> RefreshResult:
    """Fetch a ``[[vex]]`` URL (conditionally) and keep it as ``vex:NAME`` when it is a valid
    OpenVEX document; the rules read that copy (``vex_rules``). Never raises for the source."""
    from daemon.config_types import FeedConfig
    from daemon.intel import vex
    from daemon.store import intel as store_intel

    name = f"vex:{source.name}"
    feed = FeedConfig(name=name, url=source.url)
    old = await store.thread.run(_stored, store, name)
    try:
        got = await fetch.fetch(feed, etag=old.etag if old and old.fetched_at else "",
                                last_modified=old.last_modified if old and old.fetched_at
                                else "", **({"transport": transport} if transport else {}))
        if got.body is not None:
            statements = vex.parse(got.body, f"vex {source.name} ({source.url})")
    except FeedError as exc:
        await store.thread.run(_fail, store, feed, str(exc), now_fn())
        _log.warning("feed_failed", feed=name, error=str(exc))
        return RefreshResult(name, "failed", old.version if old else "", error=str(exc))
    now = now_fn()

    def keep() -> None:
        with store.engine.begin() as conn:
            if got.body is None:
                store_intel.save_unchanged(conn, name, now)
            else:
                store_intel.save_good(conn, name, source=source.url,
                                      version=f"{len(statements)} statement(s)", etag=got.etag,
                                      last_modified=got.last_modified, body=got.body, now=now)

    await store.thread.run(keep)
    return RefreshResult(name, "unchanged" if got.body is None else "updated",
                         requests=got.requests, fetched_at=now)
