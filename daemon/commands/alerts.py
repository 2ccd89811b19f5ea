"""`scanwatch alerts preview` and `scanwatch alerts outbox`: what would be sent, what was."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.commands._common import add_format, print_json, print_table
from daemon.commands._store import add_database, load_config, missing_database, open_for_reading
from daemon.errors import UsageError

HELP = "preview the alerts the next run would send, or list the outbox (pending, sent, dead)"
CHANNELS = ("text", "slack", "email", "json")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser("alerts", parents=[common], help=HELP, description=HELP + ".")
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    preview = sub.add_parser(
        "preview", parents=[common],
        help="render the messages the recorded changes would produce; sends nothing",
        description="Route, group and render the changes not yet alerted (or those since "
                    "--since) exactly as the daemon would, and print them. Nothing is sent and "
                    "nothing is marked as queued.")
    preview.add_argument("--since", metavar="WHEN",
                         help="changes since a duration ago (7d, 12h, 30m) or a date "
                              "(2026-11-01); default: the changes not yet alerted")
    preview.add_argument("--channel", choices=CHANNELS,
                         help="render every message in this form (default: each receiver "
                              "URL's own form)")
    preview.add_argument("--explain", action="store_true",
                         help="instead of the messages, say for each change why it is or is "
                              "not in one: silence, each route in order, cursor, dedup")
    add_format(preview)
    add_database(preview)
    preview.set_defaults(handler=run_preview)
    outbox = sub.add_parser(
        "outbox", parents=[common], help="list outbox messages: pending, sent, dead-lettered",
        description="List the alert outbox, newest first, with attempts and the last error.")
    outbox.add_argument("--status", choices=("pending", "sent", "dead"),
                        help="only messages in this state")
    outbox.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_format(outbox)
    add_database(outbox)
    outbox.set_defaults(handler=run_outbox)
    retry = sub.add_parser(
        "retry", parents=[common], help="send an outbox message again at the next delivery",
        description="Make an unsent (pending or dead-lettered) message due now; the daemon or "
        "the next `run --once` sends it. ID is its message id or a unique prefix of it.")
    retry.add_argument("id", nargs="?", metavar="ID", help="the message (see `alerts outbox`)")
    retry.add_argument("--dead", action="store_true", help="every dead-lettered message")
    add_database(retry)
    retry.set_defaults(handler=run_retry)
    drop = sub.add_parser(
        "drop", parents=[common], help="delete an unsent outbox message",
        description="Delete an unsent message; what it would have said may be announced again "
        "by a later run. ID is its message id or a unique prefix of it.")
    drop.add_argument("id", metavar="ID", help="the message (see `alerts outbox`)")
    add_database(drop)
    drop.set_defaults(handler=run_drop)


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``/``12h``/``30m`` ago, or an ISO date or time (UTC unless it says otherwise)."""
    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration like 7d, 12h, 30m or a date "
                         "like 2026-11-01") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run_preview(args: argparse.Namespace) -> int:
    from daemon.alerts.events import ScanProblem
    from daemon.alerts.group import context_for
    from daemon.alerts.outbox import _open_findings, plan, with_first_sight, with_project_ids
    from daemon.alerts.render import render, to_document
    from daemon.alerts.route import legacy_keys, route_keys
    from daemon.lineage.fetch import Advisors
    from daemon.scan.gcpolicy import quiet_collections
    from daemon.store import outbox as store_outbox

    cfg = load_config(args, sends=False)
    if cfg is None or not cfg.routes:
        raise UsageError("no [[route]] in the configuration: nothing would be sent")
    now = datetime.now(UTC)
    since = parse_since(args.since, now) if args.since else None
    keys = route_keys(cfg.routes)
    missing = missing_database(args, cfg)
    if missing is not None:  # the newcomer's path: preview before the first run
        if args.format == "json":
            print_json([])
        else:
            print(f"Nothing would be sent: no run has been recorded yet (no history database "
                  f"at {missing}). The first `scanwatch run --once` records what Harbor has "
                  "and announces none of it (first sight); later runs send what changes.")
        return 0
    # A first sight reads an event per image (51,754 at 100,000 images): full collections walk
    # only what is young meanwhile, as in a run (``gcpolicy``).
    with quiet_collections(), open_for_reading(args, cfg) as store:
        batch = store_outbox.peek(store, keys, since, legacy_keys(cfg.routes))
        receivers = {n for r in cfg.routes for n in (*r.receivers, *r.escalate_to)}
        notified = store_outbox.last_notified(store, receivers)
        rules = store.ignore_rules(cfg)
        open_findings = _open_findings(store, cfg, rules)
        # finding sources, read (while the store is open) for the registries a message names
        lineage = Advisors(store, [r.name for r in cfg.registries])
        ctx = with_first_sight(with_project_ids(
            context_for(cfg, name="preview", lineage=lineage), store.project_ids()), batch)
        scan_problems = [(s.id, ScanProblem("scan_failed", s.registry, s.project,
                                            s.repository, s.digest, (), s.error or s.status,
                                            s.at))
                         for s in batch.failed_scans]
        cursors = {k: (c.last_event_id, c.last_scan_id, None) for k, c in batch.cursors.items()}
        if args.explain:
            return _print_explained(args, cfg, batch.events, scan_problems, cursors, ctx, rules,
                                    notified, now)
        planned = plan(
            cfg, events=batch.events, scan_problems=scan_problems, problems=(), cursors=cursors,
            due_routes=keys, run_context=ctx, now=now, open_findings=open_findings,
            notified=notified, rules=rules, new_id=_counter())
    if args.format == "json":
        print_json([to_document(m) for m in planned.messages])
        return 0
    if not planned.messages:
        print("Nothing would be sent.")
        return 0
    for m in planned.messages:
        fmt = args.channel or "text"
        r = render(m, fmt)
        print(f"=== to {m.receiver} ({fmt}) — {r.title}")
        print(r.body.rstrip("\n"))
        print()
    return 0


def _print_explained(args: argparse.Namespace, cfg: Any, events: Any, scan_problems: Any,
                     cursors: Any, ctx: Any, rules: Any, notified: Any, now: datetime) -> int:
    from daemon.alerts.events import Item
    from daemon.alerts.explain import explain, explain_lines
    from daemon.alerts.group import first_run_registries

    items = [Item(e, "event", eid) for eid, e in events]
    items += [Item(p, "scan", sid) for sid, p in scan_problems]
    quiet = first_run_registries((e for _, e in events), ctx.known_repositories)
    found = explain(items, cfg.routes, rules=rules, notified=notified, cursors=cursors,
                    quiet=quiet, now=now, exploit=ctx.exploit)
    if args.format == "json":
        print_json([e.as_dict() for e in found])
    elif not found:
        print("No change to explain: nothing was recorded since the routes last read.")
    else:
        print("\n".join(explain_lines(found)))
    return 0


def _counter() -> Any:
    count = iter(range(1, 1_000_000))
    return lambda: f"preview-{next(count)}"


def _item(found: list[str]) -> dict[str, str]:
    """One (finding, change) a message carries, as the outbox row stores it."""
    registry, project, repository, vulnerability, package, change, *value = found
    return {"registry": registry, "project": project, "repository": repository,
            "vulnerability": vulnerability, "package": package, "change": change,
            "value": value[0] if value else ""}


def run_outbox(args: argparse.Namespace) -> int:
    from daemon.store import outbox as store_outbox

    cfg = load_config(args)
    with open_for_reading(args, cfg) as store:
        rows = store_outbox.listing(store, args.status, limit=args.limit)
    if args.format == "json":
        print_json([{
            "message_id": r.message_id, "status": r.status, "receiver": r.receiver,
            "route": r.route, "title": r.payload.get("title", ""),
            "format": r.payload.get("format", ""), "created_at": r.created_at,
            "attempts": r.attempts, "next_attempt_at": r.next_attempt_at, "sent_at": r.sent_at,
            "dead_at": r.dead_at, "last_error": r.last_error,
            "items": [_item(f) for f in r.payload.get("findings", [])]} for r in rows])
        return 0
    if not rows:
        print("The outbox is empty.")
        return 0

    def when(r: Any) -> str:
        at = r.sent_at or r.dead_at or r.next_attempt_at or r.created_at
        return str(at.strftime("%Y-%m-%d %H:%M"))

    print_table(("MESSAGE", "STATUS", "RECEIVER", "ATTEMPTS", "AT", "ERROR"),
                [(r.message_id[:14], r.status, r.receiver, r.attempts, when(r), r.last_error)
                 for r in rows])
    return 0


def _one(found: list[str], given: str) -> str:
    from daemon.errors import UsageError

    if not given.strip():
        raise UsageError("give the message's id (see `scanwatch alerts outbox`)")
    if not found:
        raise UsageError(f"no unsent outbox message {given!r} (see `scanwatch alerts outbox`)")
    if len(found) > 1:
        raise UsageError(f"{given!r} names {len(found)} messages: give more of the id")
    return found[0]


def run_retry(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from daemon.errors import UsageError
    from daemon.store import outbox as store_outbox

    if bool(args.id) == bool(args.dead):
        raise UsageError("alerts retry: give a message ID or --dead (one of them)")
    cfg = load_config(args)
    with open_for_reading(args, cfg) as store:
        found = store_outbox.retry(store, datetime.now(UTC), message_id=args.id or "",
                                   dead=args.dead)
    if args.dead:
        print(f"{len(found)} dead-lettered message(s) due again")
    else:
        print(f"{_one(found, args.id)}: due again")
    return 0


def run_drop(args: argparse.Namespace) -> int:
    from daemon.store import outbox as store_outbox

    if not args.id.strip():
        _one([], args.id)
    cfg = load_config(args)
    with open_for_reading(args, cfg) as store:
        found = store_outbox.drop(store, args.id)
    print(f"{_one(found, args.id)}: dropped")
    return 0
