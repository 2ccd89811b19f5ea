"""`scanwatch run --once [--schedule NAME]`: one full run of a schedule (or of all), then exit."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from daemon.commands._common import add_format, print_json, print_table
from daemon.commands._harbor import open_store_for_writing
from daemon.errors import UsageError

HELP = "run the schedules: --once runs each (or --schedule NAME) once now and exits"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "run", parents=[common], help=HELP, description=HELP + ".",
        epilog="A run walks the schedule's registries, imports reports Harbor already has, "
               "scans what the schedule selects under the rate limits, and stores every result. "
               "Scans that end in Error are results: the exit status is 0 unless the run "
               "itself failed (registry unreachable, bad configuration, database error).")
    p.add_argument("--once", action="store_true", help="run once now, then exit")
    p.add_argument("--schedule", metavar="NAME", help="only this schedule (default: all)")
    add_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.once:
        print("scanwatch: only `scanwatch run --once` is available yet; the daemon mode "
              "(without --once) is not implemented", file=sys.stderr)
        return 2
    from daemon import config
    from daemon.commands._common import config_path

    cfg = config.load(config_path(args), strict=True)
    schedules = list(cfg.schedules)
    if args.schedule:
        chosen = cfg.schedule(args.schedule)
        if chosen is None:
            known = ", ".join(s.name for s in cfg.schedules) or "none configured"
            raise UsageError(f"unknown schedule {args.schedule!r} (known: {known})")
        schedules = [chosen]
    if not schedules:
        raise UsageError(f"{cfg.source or config_path(args)}: no [[schedule]] to run")
    store = open_store_for_writing(cfg)
    results = [asyncio.run(_run(cfg, store, s)) for s in schedules]
    if args.format == "json":
        print_json([r.as_dict() for r in results])
    else:
        _print_summary(results)
    return 0 if all(r.ok for r in results) else 1


async def _run(cfg: Any, store: Any, schedule: Any) -> Any:
    from datetime import UTC, datetime

    from daemon.scan.run import run_schedule

    return await run_schedule(cfg, store, schedule, trigger="once",
                              now_fn=lambda: datetime.now(UTC))


def _print_summary(results: list[Any]) -> None:
    rows = []
    for result in results:
        for reg in result.registries:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(reg.outcomes.items())) or "-"
            lanes = ", ".join(f"{k} {v}" for k, v in reg.lanes.items()) or "-"
            rows.append((result.schedule, reg.registry, reg.artifacts, reg.imported, lanes,
                         outcomes, len(reg.events), reg.error or "ok"))
    print_table(("SCHEDULE", "REGISTRY", "ARTIFACTS", "IMPORTED", "SELECTED", "SCANS",
                 "CHANGES", "RESULT"), rows)
    for result in results:
        for reg in result.registries:
            for project, why in sorted(reg.unavailable.items()):
                print(f"{reg.registry}/{project}: {why}")
            for project, why in sorted(reg.failed_projects.items()):
                print(f"{reg.registry}/{project}: not listed: {why}")
