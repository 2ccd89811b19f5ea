"""`scanwatch scan TARGET… [--wait]`: scan artifacts now, and keep the results in history."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from daemon.commands._common import absent_as_null, add_format, print_json, print_table
from daemon.commands._harbor import (
    artifact_name,
    group_targets,
    load_config,
    status_of,
)
from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.store.db import Store

HELP = "scan artifacts now (on demand), optionally waiting for the results"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "scan", parents=[common], help=HELP, description=HELP + ".",
        epilog="TARGET is registry/project/repository[:tag|@digest]; any part may be a glob "
               "('prod/payments/*:1.*'). With --wait, progress shows live on a terminal "
               "(Queued → Scanning n% → Complete), as plain lines otherwise; the exit status "
               "is 1 if any scan ended in Error. Results are stored in history.")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="what to scan")
    p.add_argument("--wait", action="store_true",
                   help="follow the scans to their end, then store and show the results")
    add_format(p)
    p.set_defaults(handler=run)


class PlainLines:
    """Off a terminal: one plain line on stdout per change of an artifact's status."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def __call__(self, job: Any) -> None:
        row = _job_row(job)
        line = f"{row['artifact']}  {row['status']}  {row['detail']}".rstrip()
        if self._last.get(row["artifact"]) != line:
            self._last[row["artifact"]] = line
            print(line, flush=True)


def _cells(job: Any) -> tuple[str, str, str]:
    row = _job_row(job)
    return row["artifact"], row["status"], row["detail"]


def _job_row(job: Any) -> dict[str, Any]:
    outcome = job.outcome
    if outcome == "not_supported":
        return status_of(replace(job.artifact, scannable=False))
    if outcome in ("no_scanner", "gone", "trigger_failed"):
        label = {"not_supported": "Not Supported", "no_scanner": "Error",
                 "gone": "Error", "trigger_failed": "Error"}[outcome]
        detail = {"no_scanner": "no scanner for the project", "gone": "no longer exists",
                  "trigger_failed": "the scan could not be started"}.get(outcome, "")
        return {"artifact": artifact_name(job.artifact), "digest": job.artifact.ref.digest,
                "status": label, "detail": detail}
    row = status_of(job.artifact)
    if job.artifact.overview is None and outcome == "":
        row = {**row, "status": "Queued", "detail": "triggered" if job.ours else ""}
    return row


def run(args: argparse.Namespace) -> int:
    import asyncio

    cfg = load_config(args)
    grouped = group_targets(cfg, list(args.targets))
    from daemon.commands._progress import RunDisplay, wanted
    from daemon.store.db import open_configured_store

    store = open_configured_store(cfg) if args.wait else None
    live = args.wait and wanted(args)
    display: Any = None
    if live:
        display = RunDisplay(live=True, quiet_logs=args.log_level is None, rows=_cells)
    elif args.wait and args.format == "table":
        display = PlainLines()
    try:
        with display if live else contextlib.nullcontext():
            jobs = asyncio.run(_scan_all(cfg, grouped, store, args.wait, display))
    finally:
        if store is not None:
            store.close()
    if not jobs:
        raise UsageError(f"no artifact matches {' '.join(args.targets)}")
    rows = [_job_row(j) for j in jobs]
    if args.format == "json":
        print_json([absent_as_null(r) for r in rows])
    elif not args.wait or live:
        print_table(("ARTIFACT", "STATUS", "DETAIL"),
                    [(r["artifact"], r["status"], r["detail"]) for r in rows])
    failed = any(r["status"] == "Error" for r in rows)
    return 1 if failed else 0


async def _scan_all(cfg: Any, grouped: dict[str, list[Any]], store: Store | None, wait: bool,
                    display: Any) -> list[Any]:
    import asyncio
    from contextlib import AsyncExitStack

    from daemon.harbor.client import HarborClient
    from daemon.scan.ratelimit import WeightedCap

    global_cap = WeightedCap(cfg.daemon.max_scans_in_flight)
    rules = store.ignore_rules(cfg) if store is not None else None
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(HarborClient(cfg.registry(name)))
                   for name in grouped]
        # Every registry's credentials first: nothing is triggered (or stored) unless all hold.
        logins = await asyncio.gather(*(c.system_info() for c in clients),
                                      return_exceptions=True)
        for login in logins:
            if isinstance(login, BaseException):
                raise login
        results = await asyncio.gather(*(
            _scan_registry(client, system, targets, store, wait, display, global_cap, rules)
            for client, system, targets in zip(clients, logins, grouped.values(), strict=True)))
    return [job for jobs in results for job in jobs]


async def _scan_registry(client: Any, system: Any, targets: list[Any], store: Store | None,
                         wait: bool, display: Any, global_cap: Any,
                         rules: Any) -> list[Any]:
    from datetime import UTC, datetime

    from daemon.harbor.inventory import PROJECT_LISTING_SINCE
    from daemon.harbor.targets import resolve
    from daemon.scan.collect import Collector
    from daemon.scan.queue import Job, ScanQueue
    from daemon.scan.ratelimit import WeightedCap
    from daemon.scan.select import is_scannable

    registry = client.registry
    artifacts: dict[str, Any] = {}
    for target in targets:
        for artifact in await resolve(client, target, system):
            artifacts.setdefault(str(artifact.ref), artifact)
    skipped = []
    for key, artifact in list(artifacts.items()):
        if not is_scannable(artifact):  # a chart or the like: never triggered
            job = Job(artifact, "manual", "manual", outcome="not_supported")
            skipped.append(job)
            del artifacts[key]
            if display:
                display(job)
    if not wait:
        jobs = [Job(a, "manual", "manual") for a in artifacts.values()]
        for job in jobs:
            await _trigger_only(client, job)
        return skipped + jobs
    db_times: dict[str, Any] = {}
    for project in {a.ref.project for a in artifacts.values()}:
        scanner = await client.project_scanner(project)
        db_times[project] = (await client.scanner_db_updated_at(scanner.uuid)
                             if scanner is not None else None)

    assert store is not None  # opened by run() whenever it waits

    def record(result: Any) -> None:
        store.record_scan(result, datetime.now(UTC), rules)

    sizes: dict[tuple[str, str], int] = {}
    for a in artifacts.values():
        repo_key = (a.ref.project, a.ref.repository)
        sizes[repo_key] = sizes.get(repo_key, 0) + 1
    queue = ScanQueue(
        client, Collector(client, db_times=db_times),
        registry_cap=WeightedCap(registry.max_scans_in_flight), global_cap=global_cap,
        by_project=system.at_least(*PROJECT_LISTING_SINCE), repository_sizes=sizes,
        on_progress=display, on_result=record)
    result = await queue.run([(a, "manual") for a in artifacts.values()], (), "manual")
    return skipped + result.jobs


async def _trigger_only(client: Any, job: Any) -> None:
    from daemon.errors import AlreadyScanning, HarborError, NoScanner, NotFound, Unsupported

    ref = job.artifact.ref
    try:
        await client.trigger_scan(ref.project, ref.repository, ref.digest)
    except AlreadyScanning:
        pass
    except (Unsupported, NoScanner, NotFound, HarborError) as exc:
        job.outcome = {Unsupported: "not_supported", NoScanner: "no_scanner",
                       NotFound: "gone"}.get(type(exc), "trigger_failed")
    else:  # its earlier result is not this scan's: it shows "Queued, triggered"
        job.ours = True
        job.artifact = replace(job.artifact, overview=None)
