"""`scanwatch intel refresh|status`: the KEV and EPSS feeds, fetched now or as last kept."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.store.db import Store

HELP = "threat-intelligence feeds (CISA KEV, FIRST EPSS): refresh them now, or show their state"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "intel", parents=[common], help=HELP, description=HELP + ".",
        epilog="`refresh` fetches each [[feed]] (a conditional request: an unchanged feed costs "
        "one 304), keeps the new copy when it validates, records the known_exploited and "
        "exploit_likely events it raises on open findings and sends their alerts; a feed "
        "that fails keeps its last good copy. `status` shows each feed's version and age.")
    p.add_argument("action", choices=("refresh", "status"), help="refresh or status")
    p.add_argument("--feed", choices=("kev", "epss"), help="only this feed")
    add_format(p)
    p.set_defaults(handler=run)


def _feeds(cfg: Any, only: str | None) -> list[Any]:
    feeds = [f for f in cfg.feeds if only is None or f.name == only]
    if not feeds and not (only is None and any(v.url for v in cfg.vex)):
        raise UsageError(f"{cfg.source}: no [[feed]]" + (f" named {only}" if only else "")
                         + " (`scanwatch config init` writes the KEV and EPSS feeds)")
    return feeds


def run(args: argparse.Namespace) -> int:
    import asyncio

    from daemon import config
    from daemon.commands._common import config_path

    cfg = config.load(config_path(args), strict=args.action == "refresh")
    feeds = _feeds(cfg, args.feed)
    from daemon.store.db import open_configured_store

    store = open_configured_store(cfg)
    try:
        if args.action == "status":
            return _status(cfg, store, feeds, args.format)
        results, report = asyncio.run(_refresh(cfg, store, feeds, args.feed is None))
    finally:
        store.close()
    for r in results:
        if r.error:
            print(f"scanwatch: {r.error} (kept version {r.version})", file=sys.stderr)
    if args.format == "json":
        print_json({"feeds": [{"feed": r.feed, "outcome": r.outcome, "version": r.version,
                               "requests": r.requests, "events": r.events,
                               "error": r.error or None} for r in results],
                    "alerts": {"queued": sum(len(r.message_ids) for r in results),
                               "sent": report.sent, "pending": report.pending,
                               "dead": report.dead}})
    else:
        for r in results:
            print(f"{r.feed}: {r.outcome}, version {r.version or '-'}, {r.events} event(s)")
        print(f"alerts: {sum(len(r.message_ids) for r in results)} queued, {report.sent} sent")
    return 0 if all(r.outcome != "failed" for r in results) else 1


async def _refresh(cfg: Any, store: Store, feeds: list[Any], with_vex: bool
                   ) -> tuple[list[Any], Any]:
    from datetime import timedelta

    from daemon.alerts.deliver import DeliveryReport
    from daemon.intel.refresh import refresh, refresh_vex
    from daemon.service.cycle import deliver
    from daemon.service.daemon import utcnow

    results = [await refresh(cfg, store, f, now_fn=utcnow) for f in feeds]
    if with_vex:  # [[vex]] URLs too: their copies are what the ignore rules read
        results += [await refresh_vex(store, v, now_fn=utcnow) for v in cfg.vex if v.url]
    report = DeliveryReport()
    if any(r.message_ids for r in results):
        report = await deliver(cfg, store, now_fn=utcnow,
                               within=cfg.daemon.outbox_drain_timeout or timedelta(seconds=30))
    return results, report


def _status(cfg: Any, store: Store, feeds: list[Any], fmt: str) -> int:
    from daemon.intel.status import feed_states
    from daemon.service.daemon import utcnow

    states = feed_states(store, feeds, utcnow())
    if fmt == "json":
        print_json([s.as_dict() for s in states])
        return 0
    print_table(("FEED", "VERSION", "FETCHED", "AGE", "STALE", "SOURCE", "LAST ERROR"),
                ((s.name, s.version or "-", s.fetched_at[:19].replace("T", " ") or "never",
                  s.age_text, "yes" if s.stale else "", s.source, s.last_error)
                 for s in states), width=table_width())
    return 0
