"""`scanwatch schedule preview [NAME] [-n 5]`: when schedules fire next, and what they would do."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from daemon.commands._common import add_format, config_path, pick_schedules, print_json
from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.store.db import Store

MAX_TIMES = 1000
HELP = "preview schedules: next fire times, and what the next run would scan and for how long"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser("schedule", parents=[common], help=HELP, description=HELP)
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    p = sub.add_parser(
        "preview", parents=[common], help="next fire times and an estimate of the next run",
        description="The next fire times of each schedule (or NAME) in its time zone and in "
                    "UTC, and an estimate of its next run from the last inventory in history: "
                    "how many artifacts each lane would scan and how long that takes under "
                    "the registry's rate limits and max_scans_in_flight. The estimate knows "
                    "nothing of pushes or scanner DB updates since the last run.")
    p.add_argument("name", metavar="NAME", nargs="?", help="one schedule (default: all)")
    p.add_argument("-n", type=int, default=5, metavar="N", help="how many fire times (default 5)")
    add_format(p)
    p.set_defaults(handler=preview)


def preview(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from daemon import config as config_module

    cfg = config_module.load(config_path(args), strict=False)
    schedules = pick_schedules(cfg, args.name)
    if not 1 <= args.n <= MAX_TIMES:
        raise UsageError(f"-n must be from 1 to {MAX_TIMES}, got {args.n}")
    now = datetime.now(UTC)
    store = _store(cfg)
    try:
        previews = [_preview(cfg, store, s, now, args.n) for s in schedules]
    finally:
        if store is not None:
            store.close()
    if args.format == "json":
        print_json(previews)
    else:
        for item in previews:
            _print(item)
    return 0


def _store(cfg: Any) -> Store | None:
    """The history database if it exists (a preview never creates one)."""
    from daemon import config as config_module
    from daemon.store.base import sqlite_path
    from daemon.store.db import open_store

    url = cfg.daemon.database or config_module.default_database()
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    return open_store(url)


def _preview(cfg: Any, store: Store | None, schedule: Any, now: Any, count: int) -> dict[str, Any]:
    from datetime import UTC

    from daemon.scan.estimate import estimate_run
    from daemon.scan.select import select
    from daemon.service.scheduler import next_fire_times

    times = next_fire_times(schedule.cron, schedule.timezone, now, count)
    item: dict[str, Any] = {
        "schedule": schedule.name, "cron": schedule.cron, "timezone": schedule.timezone,
        "next": [{"local": t.isoformat(), "utc": t.astimezone(UTC).isoformat()} for t in times],
        "registries": [],
    }
    for name in schedule.registries:
        registry = cfg.registry(name)
        if registry is None:
            continue
        if store is None:
            item["registries"].append({"registry": name, "known": False})
            continue
        from daemon.store.preview import known_artifacts, mean_scan_time

        records = store.scan_records(name)
        artifacts = [_with_last_scan(a, records.get(a.ref.digest))
                     for a in known_artifacts(store, name)]
        selection = select(artifacts, records, schedule=schedule, now=times[0])
        estimate = estimate_run(
            registry, artifacts=len(artifacts),
            projects=len({a.ref.project for a in artifacts}),
            lanes=selection.lanes(), scan_time=mean_scan_time(store, name))
        item["registries"].append({
            "registry": name, "known": bool(artifacts), "artifacts": estimate.artifacts,
            "scans": estimate.scans, "lanes": estimate.lanes, "over_budget": selection.over_budget,
            "api_calls": estimate.calls, "duration_seconds": estimate.duration.total_seconds(),
            "bound_by": estimate.bound_by,
            **_coverage(cfg, registry, schedule, records, times, mean_scan_time(store, name))})
    return item


def _coverage(cfg: Any, registry: Any, schedule: Any, records: Any, times: list[Any],
              scan_time: Any) -> dict[str, Any]:
    """The rescan trickle at this schedule: its budget, the reports older than the newest
    scanner DB history has seen, and how long covering them takes."""
    from daemon.model import ScanState
    from daemon.scan import trickle

    good = [r for r in records.values() if r.state is ScanState.SUCCESS]
    newest = max((r.scanner_db_updated_at for r in good if r.scanner_db_updated_at),
                 default=None)
    behind = [r for r in good if newest is not None and r.scanner_db_updated_at is not None
              and r.scanner_db_updated_at < newest]
    window = trickle.run_window(times[:2], cfg.daemon.run_timeout)
    interval = times[1] - times[0] if len(times) >= 2 else window
    run_budget = trickle.budget(registry, schedule, scan_time=scan_time, window=window)
    coverage = trickle.Coverage(registry.name, len(good), len(behind), None)
    return {"rescan_budget": run_budget.scans, "rescan_bound_by": run_budget.bound_by,
            "behind_db": coverage.behind, "images": coverage.images,
            "cover_seconds": trickle.cover_time(coverage, run_budget, interval).total_seconds(),
            "falling_behind": trickle.falling_behind(coverage, run_budget, interval)}


def _with_last_scan(artifact: Any, record: Any) -> Any:
    """The artifact as Harbor showed it after its last scan in history (for the lanes)."""
    from dataclasses import replace

    from daemon.model import ScanOverview

    if record is None:
        return artifact
    ended = record.last_success_at or record.finished_at
    return replace(artifact, overview=ScanOverview(record.report_id, record.state,
                                                   end_time=ended))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def _print(item: dict[str, Any]) -> None:
    print(f"{item['schedule']}  ({item['cron']}, {item['timezone']})")
    for t in item["next"]:
        print(f"  {t['local']}   {t['utc']} UTC")
    for reg in item["registries"]:
        if not reg.get("known"):
            print(f"  {reg['registry']}: no inventory in history yet (run it once to estimate)")
            continue
        lanes = ", ".join(f"{n} {lane}" for lane, n in reg["lanes"].items()) or "nothing"
        print(f"  {reg['registry']}: of {reg['artifacts']} known artifacts the next run would "
              f"scan {reg['scans']} ({lanes}); about {reg['api_calls']} API calls, "
              f"{_duration(reg['duration_seconds'])} (bound by {reg['bound_by']})")
        print(f"    rescans: {reg['behind_db']} of {reg['images']} images behind the newest "
              f"scanner DB seen; a budget of {reg['rescan_budget']} a run "
              f"({reg['rescan_bound_by']}) covers them in "
              f"{_duration(reg['cover_seconds'])}")
        if reg["falling_behind"]:
            print(f"    warning: {reg['falling_behind']}")
