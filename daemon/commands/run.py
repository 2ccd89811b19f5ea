"""`scanwatch run`: the service; `scanwatch run --once [--schedule NAME]`: one run, then exit."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any

from daemon.commands._common import add_format, pick_schedules, print_json, print_table
from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.store.db import Store

HELP = "run the service (schedules on cron), or --once: each schedule once now, then exit"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "run", parents=[common], help=HELP, description=HELP + ".",
        epilog="Without --once, scanwatch runs as a service (under systemd: Type=notify): it "
               "fires each [[schedule]] on its cron in its time zone, catches up missed runs "
               "as on_missed says, delivers alerts, reloads the configuration on SIGHUP and "
               "stops cleanly on SIGTERM. A run walks the schedule's registries, imports "
               "reports Harbor already has, scans what the schedule selects under the rate "
               "limits, stores every result and queues the alerts its changes call for. Scans "
               "that end in Error are results: the exit status is 0 unless the run itself "
               "failed (registry unreachable, bad configuration, database error). With --once, "
               "SIGTERM or Ctrl-C stops starting work: no further scan is triggered, the scans "
               "in flight are followed for up to [daemon] stop_timeout (a second signal: not "
               "at all) and then left to Harbor, the run is recorded interrupted (the next "
               "start follows those scans), alerts stay queued, and the exit status is "
               "128 + the signal's number.")
    p.add_argument("--once", action="store_true",
                   help="run once now (every schedule, or --schedule NAME), deliver the "
                        "alerts, then exit")
    p.add_argument("--schedule", metavar="NAME", help="with --once: only this schedule")
    add_format(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from daemon import config
    from daemon.commands._common import config_path

    path = config_path(args)
    cfg = config.load(path, strict=True)
    if not args.once:
        if args.schedule:
            raise UsageError("--schedule goes with --once (the service runs every schedule)")
        from daemon.service.daemon import run_daemon

        return run_daemon(path, cfg)
    schedules = pick_schedules(cfg, args.schedule)
    if not schedules:
        raise UsageError(f"{cfg.source or path}: no [[schedule]] to run")
    from daemon.commands._progress import RunDisplay, wanted
    from daemon.store.db import open_configured_store

    store = open_configured_store(cfg)
    display = RunDisplay(live=wanted(args), quiet_logs=args.log_level is None)
    try:
        store.acquire_daemon_lock()
        with display:
            cycles, report, stopped_by = asyncio.run(_run(cfg, store, schedules, display))
    finally:
        store.close()
    results = [c.run for c in cycles]
    for result in results:  # one line each on stderr, whatever the format: what failed, where
        for reg in result.failed:
            found = cfg.registry(reg.registry)
            where = f" ({found.url})" if found is not None else ""
            print(f"scanwatch: schedule {result.schedule}: {reg.error}{where}", file=sys.stderr)
        for reg in result.registries:
            for problem in (reg.listing, reg.removal):
                if problem:
                    print(f"scanwatch: warning: schedule {result.schedule}: registry "
                          f"{reg.registry}: {problem}", file=sys.stderr)
            for artifact, why in reg.unreadable:
                print(f"scanwatch: warning: {artifact}: report set aside: {why}",
                      file=sys.stderr)
    if stopped_by:
        _print_stopped(stopped_by, results, schedules)
    if args.format == "json":
        print_json({"runs": [r.as_dict() for r in results],
                    "stopped_by": stopped_by or None,
                    "alerts": {"queued": sum(len(c.message_ids) for c in cycles),
                               "sent": report.sent, "pending": report.pending,
                               "dead": report.dead}})
    else:
        _print_summary(results)
        queued = sum(len(c.message_ids) for c in cycles)
        if not queued:
            _print_first_runs(results)
        print(f"alerts: {queued} queued, {report.sent} sent, {report.pending} still pending, "
              f"{report.dead} dead-lettered")
    if stopped_by:
        return 128 + int(getattr(signal, stopped_by, signal.SIGTERM))
    return 0 if all(r.ok for r in results) else 1


async def _run(cfg: Any, store: Store, schedules: list[Any],
               watcher: Any = None) -> tuple[list[Any], Any, str]:
    """Each schedule once, then drain the outbox of what they queued (bounded in time). A
    SIGTERM or SIGINT stops starting work: no more scans, schedules or deliveries; returns the
    signal's name then."""
    import asyncio

    from daemon.alerts.deliver import DeliveryReport
    from daemon.service.cycle import deliver, run_cycle
    from daemon.service.daemon import utcnow
    from daemon.service.lifecycle import Signals

    loop = asyncio.get_running_loop()
    signals = Signals(grace=cfg.daemon.stop_timeout.total_seconds)
    signals.install(loop)
    try:
        cycles = []
        for schedule in schedules:
            if signals.stop.requested:
                break
            cycles.append(await run_cycle(cfg, store, schedule, trigger="once", now_fn=utcnow,
                                          stop=signals.stop, on_progress=watcher))
        if signals.stop.requested:  # what was queued waits in the outbox for the next sender
            report = DeliveryReport(pending=sum(len(c.message_ids) for c in cycles))
        else:
            report = await deliver(cfg, store, now_fn=utcnow,
                                   within=cfg.daemon.outbox_drain_timeout)
    finally:
        signals.uninstall(loop)
    return cycles, report, signals.signal_name


def _print_stopped(signal_name: str, results: list[Any], schedules: list[Any]) -> None:
    """One line on stderr: what the stop left undone, and who picks it up."""
    parts = [f"schedule {r.schedule}: {r.left_running} scans left running in Harbor, "
             f"{r.not_triggered} not triggered" for r in results if r.interrupted]
    skipped = [s.name for s in schedules[len(results):]]
    if skipped:
        parts.append(f"not started: {', '.join(skipped)}")
    what = "; ".join(parts) or "nothing left undone"
    print(f"scanwatch: stopped by {signal_name}: {what} (the next run follows Harbor's scans; "
          f"queued alerts stay in the outbox)", file=sys.stderr)


def _print_first_runs(results: list[Any]) -> None:
    """Why nothing was sent, where that is a registry's first run: its findings are recorded
    as the baseline, and alerts announce what changes from then on."""
    for result in results:
        for reg in result.registries:
            if reg.only_first_sight:
                print(f"first run of {reg.registry}: {reg.first_sight_findings} findings "
                      "recorded, none announced (later runs announce what changes)")


def _print_summary(results: list[Any]) -> None:
    rows = []
    for result in results:
        for reg in result.registries:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(reg.outcomes.items())) or "-"
            lanes = ", ".join(f"{k} {v}" for k, v in reg.lanes.items()) or "-"
            rows.append((result.schedule, reg.registry, reg.artifacts, reg.imported, lanes,
                         outcomes, reg.changes, reg.error or "ok"))
    print_table(("SCHEDULE", "REGISTRY", "ARTIFACTS", "IMPORTED", "SELECTED", "SCANS",
                 "CHANGES", "RESULT"), rows)
    for result in results:
        for reg in result.registries:
            for project, why in sorted(reg.unavailable.items()):
                print(f"{reg.registry}/{project}: {why}")
            for project, why in sorted(reg.failed_projects.items()):
                print(f"{reg.registry}/{project}: not listed: {why}")
