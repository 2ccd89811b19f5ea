"""`scanwatch runs [show ID]`: the last runs of each schedule, as the history database has them."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.commands._common import add_format, print_json, print_table, table_width
from daemon.commands._store import add_database, load_config, open_for_reading
from daemon.errors import UsageError

HELP = "list the last runs of each schedule: start, duration, result and what went wrong"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("runs", parents=[common], help=HELP, description=HELP + ".",
                              epilog="`scanwatch runs show ID` shows one run in full. BEHIND: "
                                     "images whose report is older than the scanner's DB / "
                                     "images, after the run ('!': the rescans cannot cover "
                                     "them before the DB's next update)")
    p.add_argument("show", nargs="?", choices=("show",), help=argparse.SUPPRESS)
    p.add_argument("id", nargs="?", type=int, metavar="ID", help="with `show`: the run's id")
    p.add_argument("--schedule", help="only this schedule's runs")
    p.add_argument("--last", type=int, default=10, metavar="N",
                   help="runs per schedule (default: 10)")
    add_format(p)
    add_database(p)
    p.set_defaults(handler=run)


def _json(r: Any) -> dict[str, Any]:
    from daemon.store.runs import summary_of

    duration = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
    summary = summary_of(r) or {}
    return {"id": r.id, "schedule": r.schedule, "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "duration_seconds": duration, "result": r.result, "detail": r.detail or None,
            # What the run did (null for runs recorded before scanwatch kept it).
            **{key: summary.get(key) for key in ("trigger", "registries", "scans", "imported",
                                                  "changes", "alerts", "errors", "coverage")}}


def _scans(scans: dict[str, int] | None) -> str:
    if scans is None:
        return ""
    return ", ".join(f"{k} {v}" for k, v in sorted(scans.items())) or "none"


def _behind(coverage: dict[str, Any] | None) -> str:
    """``12/400`` (images behind the scanner DB / images), summed over the run's registries;
    a ``!`` where the rescans fall behind the DB's updates."""
    if not coverage:
        return ""
    behind = sum(int(c.get("behind_db") or 0) for c in coverage.values())
    images = sum(int(c.get("images") or 0) for c in coverage.values())
    late = any(c.get("falling_behind") for c in coverage.values())
    return f"{behind}/{images}" + ("!" if late else "")


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "(running)"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def run(args: argparse.Namespace) -> int:
    from daemon.store import runs

    if args.show and args.id is None:
        raise UsageError("runs show: which run? give its ID (see `scanwatch runs`)")
    cfg = load_config(args, sends=False)
    store = open_for_reading(args, cfg)
    try:
        if args.show:
            found = runs.one(store.engine, args.id)
            if found is None:
                raise UsageError(f"no run with id {args.id} (see `scanwatch runs`)")
            rows = [found]
        else:
            rows = runs.recent(store.engine, schedule=args.schedule, per_schedule=args.last)
    finally:
        store.close()
    records = [_json(r) for r in rows]
    if args.format == "json":
        print_json(records[0] if args.show else records)
    elif args.show:
        for key, value in records[0].items():
            if key == "scans":
                value = _scans(value) if value is not None else None
            elif key == "coverage" and value:
                from daemon.scan.trickle import coverage_line

                value = "; ".join(f"{name}: {c.get('falling_behind') or coverage_line(c)}"
                                  for name, c in value.items())
            elif isinstance(value, list):
                value = ", ".join(value)
            elif isinstance(value, dict):
                value = "; ".join(f"{k}: {v}" for k, v in value.items()) or "none"
            print(f"{key:17} {'' if value is None else value}")
    else:
        print_table(("ID", "SCHEDULE", "STARTED", "DURATION", "TRIGGER", "REGISTRIES",
                     "SCANS", "CHANGES", "ALERTS", "BEHIND", "RESULT", "DETAIL"),
                    ((r["id"], r["schedule"], r["started_at"][:16].replace("T", " "),
                      _duration(r["duration_seconds"]), r["trigger"] or "",
                      ", ".join(r["registries"] or ()), _scans(r["scans"]),
                      _count(r["changes"]), _count(r["alerts"]), _behind(r["coverage"]),
                      r["result"], r["detail"])
                     for r in records), width=table_width(),
                    empty="no runs recorded yet" + (f" for schedule {args.schedule}"
                                                     if args.schedule else ""),
                    total=f"{len(records)} run(s)" if records else "")
    return 0
