"""One full run of a schedule: walk → record → import → select → scan → collect, per registry.

``run_schedule`` is what ``scanwatch run --once`` calls and what the scheduler fires on cron.
Scans that end in Error are results, not failures; a registry that cannot be walked (after the
client's retries) is a failed registry, and the run says so in ``RunResult.failed``. A run that a
stop request cut short (scans left running in Harbor, or selected ones never triggered) is
recorded ``interrupted``: the next start resumes it, following Harbor's scans, not re-triggering.

Credentials come first: each registry's ``/systeminfo`` is read before the run is recorded. A
registry that accepts none of them (Harbor then answers as to an anonymous caller, which looks
like an empty registry) takes no part in the run; when no registry does, the run raises
``CredentialsRejected`` and records nothing at all.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon import log
from daemon.config_types import Config, RegistryConfig, ScheduleConfig
from daemon.diff import is_first_sight, mass_removal
from daemon.errors import CredentialsRejected, HarborError, UsageError
from daemon.harbor.client import HarborClient
from daemon.harbor.inventory import PROJECT_LISTING_SINCE, RegistryInventory, not_listed, walk
from daemon.harbor.packed import PAGE, unpack
from daemon.harbor.wire import SystemInfo
from daemon.ignores import NO_RULES, IgnoreRules
from daemon.lineage import fetch as lineage_fetch
from daemon.model import Artifact, ArtifactRef, ChangeEvent, ScanResult, ScanState
from daemon.scan import trickle
from daemon.scan.collect import Collector
from daemon.scan.gcpolicy import quiet_collections
from daemon.scan.queue import Progress, QueueOptions, ScanQueue
from daemon.scan.ratelimit import WeightedCap
from daemon.scan.select import Selection, Selector, is_scannable
from daemon.scan.stop import StopRequest
from daemon.scan.watch import tell

if TYPE_CHECKING:
    from daemon.store.db import Store

IMPORT_BATCH = 100
SELECT_BATCH = PAGE  # artifacts selected from a read of their scan records (a walk's page)
Scope = frozenset[tuple[str, str]]  # (project, repository): what a small run walks
INTERRUPTED = "interrupted"  # a run's result when a stop cut it short

_log = log.get(__name__)


@dataclass
class RegistryRun:
    registry: str
    harbor_version: str = ""
    artifacts: int = 0
    imported: int = 0
    lanes: dict[str, int] = field(default_factory=dict)
    followed: int = 0
    not_supported: int = 0
    over_budget: int = 0
    triggered: int = 0
    left_running: int = 0  # a stop left these scans to Harbor
    not_triggered: int = 0  # a stop (or the run timeout) kept these from being triggered
    outcomes: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # project -> reason
    project_ids: dict[str, int] = field(default_factory=dict)  # project -> Harbor's id
    scanner_db_updated_at: datetime | None = None  # the newest DB among the projects' scanners
    failed_projects: dict[str, str] = field(default_factory=dict)
    not_stored: int = 0
    # The changes this run recorded, counted (alerts read them from the database's events):
    # a first import of 100,000 reports would otherwise hold an event of each until the end.
    changes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)  # the changes by kind ("new", ...)
    first_sight: int = 0  # of them, first-sight summaries (diff.is_first_sight)
    first_sight_findings: int = 0  # the findings those summaries stand for
    calls: int = 0
    error: str = ""
    listing: str = ""  # what the listing hid, when it hid anything (one line)
    removal: str = ""  # why the walk was not believed: it would remove too much (one line)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (artifact, why) set aside
    # The rescan trickle (daemon/scan/trickle.py): this run's budget, and the coverage after it.
    budget: int = 0
    bound_by: str = ""
    images: int = 0  # scannable images with a report
    behind_db: int = 0  # of those, reports still older than the scanner's DB
    oldest_behind: datetime | None = None
    cover_seconds: float = 0.0  # how long rescanning what is behind takes at this budget
    falling_behind: str = ""  # one line when that is longer than the DB's update interval
    rescans: bool = True  # the schedule has the db_updated lane (else nothing covers them)

    def coverage_record(self) -> dict[str, Any]:
        """The rescan trickle's coverage after this run, as JSON values (kept with the run's
        summary: `scanwatch runs`, the doctor, config check and the digest read it)."""
        return {"images": self.images, "behind_db": self.behind_db,
                "oldest_behind": self.oldest_behind.isoformat() if self.oldest_behind
                else None,
                "scanner_db_updated_at": self.scanner_db_updated_at.isoformat()
                if self.scanner_db_updated_at else None,
                "budget": self.budget, "bound_by": self.bound_by,
                "cover_seconds": self.cover_seconds if self.rescans else None,
                "falling_behind": self.falling_behind or None, "rescans": self.rescans}

    def record(self, events: Iterable[ChangeEvent]) -> None:
        """Count the changes a step of the run recorded."""
        for event in events:
            self.changes += 1
            self.kinds[event.kind.value] = self.kinds.get(event.kind.value, 0) + 1
            if is_first_sight(event):
                self.first_sight += 1
                self.first_sight_findings += event.count

    @property
    def only_first_sight(self) -> bool:
        """The registry's first run: every change it recorded is a first-sight summary."""
        return bool(self.changes) and self.first_sight == self.changes

    def as_dict(self) -> dict[str, Any]:
        skip = ("changes", "kinds", "first_sight", "first_sight_findings")
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        data["events"] = self.changes
        for key in ("scanner_db_updated_at", "oldest_behind"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value.isoformat()
        return data


@dataclass
class RunResult:
    schedule: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None = None
    registries: list[RegistryRun] = field(default_factory=list)
    stopped_by: str = ""  # the signal whose stop request cut this run short
    run_id: int = 0  # its schedule_run row

    @property
    def interrupted(self) -> bool:
        return bool(self.stopped_by)

    @property
    def left_running(self) -> int:
        return sum(r.left_running for r in self.registries)

    @property
    def not_triggered(self) -> int:
        return sum(r.not_triggered for r in self.registries)

    @property
    def result(self) -> str:
        """As recorded: ``interrupted``, ``failed`` or ``ok``."""
        return INTERRUPTED if self.interrupted else "ok" if self.ok else "failed"

    def stop_detail(self) -> str:
        return (f"stopped by {self.stopped_by}: {self.left_running} scans left running in "
                f"Harbor, {self.not_triggered} not triggered")

    @property
    def failed(self) -> list[RegistryRun]:
        return [r for r in self.registries if r.error]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def changes(self) -> int:
        return sum(r.changes for r in self.registries)

    def kinds(self) -> dict[str, int]:
        """The changes this run recorded, by kind."""
        out: dict[str, int] = {}
        for reg in self.registries:
            for kind, count in reg.kinds.items():
                out[kind] = out.get(kind, 0) + count
        return out

    def summary(self, alerts: int) -> dict[str, Any]:
        """What `scanwatch runs` shows of this run (kept with its row)."""
        scans: dict[str, int] = {}
        for reg in self.registries:
            for outcome, count in reg.outcomes.items():
                scans[outcome] = scans.get(outcome, 0) + count
        return {"trigger": self.trigger, "registries": [r.registry for r in self.registries],
                "scans": scans, "imported": sum(r.imported for r in self.registries),
                "changes": self.changes, "alerts": alerts,
                "errors": {r.registry: r.error for r in self.registries if r.error},
                # per registry of a whole-registry run (a webhook's small run measures none)
                "coverage": {r.registry: r.coverage_record() for r in self.registries
                             if r.images}}

    def as_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "trigger": self.trigger,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "ok": self.ok, "result": self.result,
                "registries": [r.as_dict() for r in self.registries]}


async def run_schedule(
    config: Config,
    store: Store,
    schedule: ScheduleConfig,
    *,
    trigger: str,
    now_fn: Callable[[], datetime],
    options: QueueOptions | None = None,
    on_progress: Progress | None = None,
    stop: StopRequest | None = None,
    scope: Scope | None = None,
) -> RunResult:
    """Run ``schedule`` once over its registries (concurrently) and record everything. After
    ``stop`` is requested no scan is triggered, and the run ends when the scans in flight end
    or the request's deadline passes, whichever comes first. ``scope`` ((project, repository)
    pairs) narrows the run to those repositories: walked, recorded and selected alone."""
    registries: list[RegistryConfig] = []
    for name in schedule.registries:
        found = config.registry(name)
        if found is None:
            raise UsageError(f"schedule {schedule.name}: unknown registry {name!r}")
        registries.append(found)
    async with AsyncExitStack() as stack:
        # From its first moment to its last (the clients closed), full collections walk only
        # what is young, not the daemon and the run's walk, records and lineage: each one stops
        # every thread, the loop's too (bench/loop.py). Everything is handed back at the end.
        stack.enter_context(quiet_collections())
        clients = [await stack.enter_async_context(HarborClient(r)) for r in registries]
        logins = await asyncio.gather(*(_login(c) for c in clients))
        rejected = [e for e in logins if isinstance(e, CredentialsRejected)]
        if rejected and len(rejected) == len(logins):
            if len(rejected) == 1:
                raise rejected[0]
            raise CredentialsRejected("; ".join(str(e) for e in rejected))
        return await _run(config, store, schedule, list(zip(clients, logins, strict=True)),
                          trigger=trigger, now_fn=now_fn, options=options,
                          on_progress=on_progress, stop=stop, scope=scope)


async def _login(client: HarborClient) -> SystemInfo | HarborError:
    try:
        return await client.system_info()
    except HarborError as exc:
        return exc


async def _run(
    config: Config,
    store: Store,
    schedule: ScheduleConfig,
    clients: list[tuple[HarborClient, SystemInfo | HarborError]],
    *,
    trigger: str,
    now_fn: Callable[[], datetime],
    options: QueueOptions | None,
    on_progress: Progress | None,
    stop: StopRequest | None,
    scope: Scope | None = None,
) -> RunResult:
    started = now_fn()
    result = RunResult(schedule.name, trigger, started)
    # The ignore rules in force (config + the allowlists last read): a rule that expired or
    # was removed since the last run brings its findings back now, once.
    db = store.thread  # every database call of the run goes through its one thread
    rules = await db.run(store.ignore_rules, config)
    await db.run(store.reconcile_ignores, rules, started)
    run_id = await db.run(store.record_run_start, schedule.name, started)
    result.run_id = run_id
    global_cap = WeightedCap(config.daemon.max_scans_in_flight)
    deadline = time.monotonic() + config.daemon.run_timeout.total_seconds()
    opts = options or QueueOptions()
    opts = QueueOptions(opts.poll_initial, opts.poll_max, opts.poll_factor,
                        opts.early_error_window, opts.deadline or deadline)
    _log.info("run_started", schedule=schedule.name, trigger=trigger,
              registries=[c.registry.name for c, _ in clients])
    try:
        result.registries = list(await asyncio.gather(*(
            _run_registry(store, client, login, schedule, global_cap, now_fn, opts, on_progress,
                          rules, stop, scope)
            for client, login in clients)))
    except asyncio.CancelledError:
        # A stop (SIGTERM) past the stop timeout: scans Harbor already runs keep running, and
        # the next start resumes this schedule to follow them and store their reports.
        # (Waited for here, not awaited: the task is being cancelled.)
        db.submit(store.record_run_finish, run_id, now_fn(), INTERRUPTED,
                  "stopped before the run ended").result()
        raise
    except BaseException as exc:
        db.submit(store.record_run_finish, run_id, now_fn(), "failed",
                  f"{type(exc).__name__}: {exc}").result()
        raise
    result.finished_at = now_fn()
    if stop is not None and stop.requested and (result.left_running or result.not_triggered):
        result.stopped_by = stop.reason or "a stop request"
    detail = "; ".join(f"{r.registry}: {r.error}" for r in result.failed)
    if result.interrupted:
        detail = "; ".join(d for d in (result.stop_detail(), detail) if d)
    await db.run(store.record_run_finish, run_id, result.finished_at, result.result, detail)
    _log.info("run_finished", schedule=schedule.name, ok=result.ok, result=result.result,
              left_running=result.left_running, not_triggered=result.not_triggered,
              triggered=sum(r.triggered for r in result.registries),
              imported=sum(r.imported for r in result.registries),
              events=result.changes)
    return result


async def _run_registry(
    store: Store,
    client: HarborClient,
    login: SystemInfo | HarborError,
    schedule: ScheduleConfig,
    global_cap: WeightedCap,
    now_fn: Callable[[], datetime],
    options: QueueOptions,
    on_progress: Progress | None,
    rules: IgnoreRules,
    stop: StopRequest | None = None,
    scope: Scope | None = None,
) -> RegistryRun:
    registry = client.registry
    out = RegistryRun(registry.name)
    try:
        if isinstance(login, HarborError):
            raise login
        await _registry_steps(client, store, registry, schedule, global_cap, now_fn,
                              options, on_progress, out, login, rules, stop, scope)
    except HarborError as exc:
        out.error = str(exc)
        _log.error("registry_run_failed", registry=registry.name, error=str(exc))
    out.calls = client.calls
    return out


async def _registry_steps(
    client: HarborClient,
    store: Store,
    registry: RegistryConfig,
    schedule: ScheduleConfig,
    global_cap: WeightedCap,
    now_fn: Callable[[], datetime],
    options: QueueOptions,
    on_progress: Progress | None,
    out: RegistryRun,
    system: SystemInfo,
    rules: IgnoreRules,
    stop: StopRequest | None = None,
    scope: Scope | None = None,
) -> None:
    db = store.thread
    known = await db.run(store.present_artifacts, registry.name)
    tell(on_progress, registry.name, "walking")
    if scope is not None:
        known = [k for k in known if (k.project, k.repository) in scope]
    inventory = await walk(client, registry, system=system, known=known, scope=scope)
    out.harbor_version = inventory.harbor_version
    out.listing = inventory.listing_problem()
    out.artifacts = inventory.count()
    tell(on_progress, registry.name, "walked", out.artifacts)
    out.unavailable = {p.name: p.unavailable for p in inventory.projects if p.unavailable}
    out.failed_projects = {p.name: p.error for p in inventory.projects if p.error}
    out.project_ids = {p.name: p.project_id for p in inventory.projects if p.project_id}
    # Kept for what runs without a walk (digests, previews, the pages) to link into Harbor.
    await db.run(store.save_project_ids, registry.name, out.project_ids, now_fn())
    out.scanner_db_updated_at = max(
        (t for t in inventory.db_times().values() if t is not None), default=None)
    if registry.use_harbor_allowlist and scope is None:
        # (A scoped run read only its projects' allowlists: the stored ones stay in force.)
        # This read of Harbor's allowlists stays in force (stored) until the next one.
        await db.run(store.save_allowlists, registry.name, inventory.allowlists, now_fn())
        rules = rules.with_allowlists(registry.name, inventory.allowlists)
        await db.run(store.reconcile_ignores, rules, now_fn(), registry.name)
    new_digests: set[str] = set()
    # The steps that read the whole walk run beside the loop (a worker thread, as the
    # database's work does): unpacking every page is seconds at 100,000 artifacts, which the
    # loop would otherwise stand still for (polling, /healthz, the watchdog).
    unlisted = await asyncio.to_thread(not_listed, inventory.projects, known, children=False)
    out.removal = mass_removal(len(known), sum(1 for k in known if (
        k.project, k.repository, k.digest) in unlisted), registry.max_removed_share)
    del known, unlisted  # every artifact's ref: not held through the rest of the run
    if out.removal:
        _log.warning("inventory_not_believed", registry=registry.name, detail=out.removal)
    elif inventory.complete:
        delta = await db.run(store.record_inventory, registry.name, inventory, now_fn(),
                             scope)
        # Selection asks whether a digest is new only of an artifact Harbor shows unscanned:
        # those alone are kept (a first import's every digest is new).
        if delta.new:
            unscanned = await asyncio.to_thread(_unscanned, inventory)
            new_digests = {r.digest for r in delta.new if r.digest in unscanned}
            del unscanned
        # Resolve where the project is usable, or where Harbor confirmed the deletion (404).
        usable = {p.name for p in inventory.projects if p.usable}
        gone = set(inventory.gone)
        removed = [r for r in delta.removed if r.project in usable or r in gone]
        if removed:
            out.record(await db.run(store.resolve_removed, registry.name, removed, now_fn(),
                                    rules))
        del delta, removed  # every new artifact's ref, on a first import
    else:
        # A project could not be listed, or what the listing missed could not be looked up:
        # those artifacts would look deleted. Record nothing of the walk this time (no tag
        # moves, nothing resolved); scans still go ahead.
        _log.warning("inventory_not_recorded", registry=registry.name,
                     failed=sorted(out.failed_projects), unconfirmed=len(inventory.unconfirmed))
    collector = Collector(client, db_times=inventory.db_times())
    out.imported = await import_reports(store, collector, inventory, now_fn, out, rules)
    tell(on_progress, registry.name, "imported", out.imported)
    run_budget, interval = await _budget(store, registry, schedule, options, now_fn())
    severe, kev = await db.run(_rescan_priority, store, registry.name)
    selector = Selector(schedule=schedule, new_digests=new_digests,
                        db_updated_at=inventory.db_times(), now=now_fn(),
                        budget=run_budget.scans, severe=severe, kev=kev, grouped=True)
    selection = await asyncio.to_thread(_select, store, inventory, selector)
    out.budget, out.bound_by = run_budget.scans, run_budget.bound_by
    out.lanes = selection.lanes()
    out.followed = len(selection.follow)
    out.not_supported = selection.not_supported
    out.over_budget = selection.over_budget
    tell(on_progress, registry.name, "selected", len(selection.scans) + out.followed)
    _log.info("scans_selected", registry=registry.name, lanes=out.lanes,
              follow=out.followed, over_budget=out.over_budget)

    recorded: list[Future[list[ChangeEvent]]] = []

    def record(result: ScanResult) -> None:
        # Queued on the database thread in the order the scans end; their events are
        # collected, in that order, when the queue is done.
        recorded.append(db.submit(store_or_set_aside, store, [result], now_fn(), rules, out))

    queue = make_queue(client, collector, registry, global_cap, inventory, options,
                       on_progress, record, stop, whole=scope is None)
    queued = await queue.run([(p.artifact, p.lane) for p in selection.scans], selection.follow,
                             f"schedule:{schedule.name}")
    for done in recorded:
        events: list[ChangeEvent] = await asyncio.wrap_future(done)
        out.record(events)
    out.triggered = queued.triggered
    out.left_running = queued.left_running
    out.not_triggered = queued.not_triggered
    out.outcomes = queued.outcomes()
    await asyncio.to_thread(_coverage, out, inventory, selection, queued, run_budget,
                            interval, scope is None, schedule)
    out.not_stored = len(collector.skipped)
    fetched = await lineage_fetch.fetch_missing(
        client, store, functools.partial(inventory.each, usable=True), now_fn)
    out.unreadable[:0] = [(str(ref), why) for ref, _, why in collector.unreadable]
    if collector.unreadable:
        await db.run(mark_set_aside, store, collector.unreadable, now_fn())
    # Resolving holds every image's lineage: the walk, its selection and its scans are let go
    # first, not held beside it.
    del inventory, selection, queue, queued, collector
    await lineage_fetch.resolve_registry(client, store, now_fn, fetched)


async def _budget(store: Store, registry: RegistryConfig, schedule: ScheduleConfig,
                  options: QueueOptions, now: datetime) -> tuple[trickle.Budget, timedelta]:
    """This run's budget, and the interval to the schedule's next run (its window)."""
    from daemon.service.scheduler import next_fire_times
    from daemon.store.preview import mean_scan_time

    try:
        fires = next_fire_times(schedule.cron, schedule.timezone, now, 2) if schedule.cron \
            else []
    except (ValueError, KeyError):
        fires = []
    left = (timedelta(seconds=max(0.0, options.deadline - time.monotonic()))
            if options.deadline is not None else trickle.DB_UPDATE_EVERY)
    window = trickle.run_window(fires, left)
    interval = fires[1] - fires[0] if len(fires) >= 2 else window
    scan_time = await store.thread.run(mean_scan_time, store, registry.name)
    return trickle.budget(registry, schedule, scan_time=scan_time, window=window), interval


def _select(store: Store, inventory: RegistryInventory, selector: Selector) -> Selection:
    """Feed the walk to ``selector`` a batch at a time, each with the scan records of its
    digests read for it (on the database's thread; this runs in a worker thread beside the
    loop): the run holds a batch of records, not every artifact's."""
    artifacts = inventory.each(usable=True)
    while batch := list(itertools.islice(artifacts, SELECT_BATCH)):
        records = store.thread.submit(store.scan_records, inventory.registry,
                                      {a.ref.digest for a in batch}).result()
        for artifact in batch:
            selector.add(artifact, records.get(artifact.ref.digest))
    return selector.selection()


def _unscanned(inventory: RegistryInventory) -> set[str]:
    """The digests of the walk that Harbor shows without a scan."""
    return {a.ref.digest for a in inventory.each() if a.overview is None}


def _coverage(out: RegistryRun, inventory: RegistryInventory, selection: Selection,
              queued: Any, run_budget: trickle.Budget, interval: timedelta,
              whole: bool, schedule: ScheduleConfig) -> None:
    """The share of images still behind the scanner's DB after this run, and whether the
    trickle keeps up (said once per run, with the numbers)."""
    if not whole:
        return  # a webhook's small run sees a few repositories: no coverage to tell
    if all(t is None for t in inventory.db_times().values()):
        # The account cannot read the scanner's DB time (system scanner read): nothing can be
        # said to be behind it, and saying "none" would be a guess.
        _log.warning("rescan_coverage_unknown", registry=out.registry,
                     reason="the scanner's DB time is not readable by this account")
        return
    rescanned = sum(1 for j in queued.jobs if j.lane == "db_updated" and j.outcome == "complete")
    # Images with a report after the run: those Harbor showed scanned, and those scanned now;
    # counted a project at a time (no set of every image).
    scanned_now: dict[str, set[tuple[str, str]]] = {}
    for j in queued.jobs:
        if j.outcome == "complete":
            ref = j.artifact.ref
            scanned_now.setdefault(ref.project, set()).add((ref.repository, ref.digest))
    images = 0
    for project in inventory.projects:
        if not project.usable:
            continue
        reported = {(a.ref.repository, a.ref.digest) for a in unpack(project.pages)
                    if is_scannable(a) and a.overview is not None
                    and a.overview.state is ScanState.SUCCESS}
        images += len(reported | scanned_now.pop(project.name, set()))
    images += sum(len(refs) for refs in scanned_now.values())
    coverage = trickle.Coverage(out.registry, images, max(0, selection.behind_db - rescanned),
                                selection.oldest_behind if selection.behind_db > rescanned
                                else None)
    out.images, out.behind_db, out.oldest_behind = coverage.images, coverage.behind, \
        coverage.oldest
    out.rescans = "db_updated" in schedule.select
    if out.rescans:
        out.cover_seconds = trickle.cover_time(coverage, run_budget, interval).total_seconds()
        out.falling_behind = trickle.falling_behind(coverage, run_budget, interval)
    _log.info("rescan_coverage", registry=out.registry, images=coverage.images,
              behind=coverage.behind, share_behind=round(coverage.share_behind, 4),
              budget=run_budget.scans, bound_by=run_budget.bound_by,
              cover_hours=round(out.cover_seconds / 3600, 2))
    if out.falling_behind:
        _log.warning("rescan_falling_behind", registry=out.registry, detail=out.falling_behind)


def make_queue(
    client: HarborClient,
    collector: Collector,
    registry: RegistryConfig,
    global_cap: WeightedCap,
    inventory: RegistryInventory,
    options: QueueOptions,
    on_progress: Progress | None,
    on_result: Callable[[ScanResult], None],
    stop: StopRequest | None = None,
    *,
    whole: bool = True,
) -> ScanQueue:
    """The run's scan queue. ``whole``: the inventory holds whole projects, so the queue may
    poll a project's listing; a scoped walk's sizes do not tell what that listing costs."""
    return ScanQueue(
        client, collector,
        registry_cap=WeightedCap(registry.max_scans_in_flight),
        global_cap=global_cap,
        by_project=whole and _version_at_least(inventory.harbor_version, PROJECT_LISTING_SINCE),
        repository_sizes=inventory.repository_sizes(),
        options=options, on_progress=on_progress, on_result=on_result, stop=stop,
    )


def _version_at_least(version: str, wanted: tuple[int, ...]) -> bool:
    from daemon.harbor.wire import parse_version

    return parse_version(version) >= wanted


async def import_reports(
    store: Store,
    collector: Collector,
    inventory: RegistryInventory,
    now_fn: Callable[[], datetime],
    out: RegistryRun | None = None,
    rules: IgnoreRules = NO_RULES,
) -> int:
    """Store every finished report Harbor shows that history does not know yet, without a
    rescan (trigger ``imported``). Unchanged artifacts cost nothing: their ids are known."""
    db = store.thread
    finished = (a for a in inventory.each(usable=True)
                if a.overview is not None and a.overview.state.finished and a.overview.report_id)
    todo = 0
    stored = 0
    before = await db.run(store.last_scan_id)  # "known": stored before this import began
    # A batch of candidates at a time: which of its reports history holds is asked for that
    # batch alone (an unchanged rerun holds no set of every report id), and each batch's
    # reports are fetched, stored and let go before the next (the walk is unpacked as the
    # batches go: no list of every finished artifact).
    while candidates := list(itertools.islice(finished, IMPORT_BATCH)):
        known = await db.run(store.known_reports_among, inventory.registry,
                             [a.overview.report_id for a in candidates if a.overview], before)
        batch: Sequence[Artifact] = [a for a in candidates
                                     if a.overview and a.overview.report_id not in known]
        todo += len(batch)
        if not batch:
            continue
        results = await asyncio.gather(*(collector.collect(a, "imported") for a in batch))
        done = [r for r in results if r is not None]
        if done:
            set_aside = len(out.unreadable) if out is not None else 0
            events = await db.run(store_or_set_aside, store, done, now_fn(), rules, out)
            if out is not None:
                out.record(events)
                set_aside = len(out.unreadable) - set_aside
            stored += len(done) - set_aside
    if todo:
        _log.info("reports_imported", registry=inventory.registry, stored=stored,
                  candidates=todo)
    return stored


def is_poison(exc: BaseException) -> bool:
    """Whether storing failed because of what one report holds, not because the database is
    unusable (locked, full, gone): a value Python or the driver refused. (run.py may not
    import SQLAlchemy: its wrapped driver errors are known by the DB-API class they carry.)"""
    if isinstance(exc, (ValueError, TypeError, OverflowError)):  # UnicodeEncodeError is one
        return True
    origin = getattr(exc, "orig", None)
    return type(origin).__name__ in ("IntegrityError", "DataError", "ProgrammingError") or (
        isinstance(origin, (ValueError, TypeError, OverflowError)))


def store_or_set_aside(
    store: Store, results: Sequence[ScanResult], now: datetime, rules: IgnoreRules,
    out: RegistryRun | None,
) -> list[ChangeEvent]:
    """Store the results in one transaction; when that fails for what a report holds, store
    them one by one and set aside each that still fails (one line: artifact, reason): the
    others are stored, and the one set aside resolves nothing."""
    try:
        events = list(store.record_scans(results, now, rules))
    except Exception as exc:
        if not is_poison(exc):
            raise
    else:
        clear_set_aside(store, [r.ref for r in results if r.state.finished])
        return events
    events = []
    stored: list[ArtifactRef] = []
    refused: list[tuple[ArtifactRef, str, str]] = []
    for result in results:
        try:
            events.extend(store.record_scans([result], now, rules))
        except Exception as exc:
            if not is_poison(exc):
                raise
            why = f"cannot be stored: {type(exc).__name__}: {_first_line(exc)}"
            _log.warning("report_set_aside", artifact=str(result.ref), reason=why)
            refused.append((result.ref, result.report_id, why))
            if out is not None:
                out.unreadable.append((str(result.ref), why))
        else:
            if result.state.finished:
                stored.append(result.ref)
    clear_set_aside(store, stored)
    mark_set_aside(store, refused, now)
    return events


def mark_set_aside(
    store: Store, items: Sequence[tuple[ArtifactRef, str, str]], now: datetime
) -> None:
    """Remember these (artifact, report id, why) as set aside, for `scanwatch status`."""
    from daemon.store import setaside

    if items:
        with store.engine.begin() as conn:
            setaside.mark(conn, [setaside.SetAside(ref, report_id, why, now)
                                 for ref, report_id, why in items])


def _rescan_priority(store: Store, registry: str) -> tuple[dict[tuple[str, str], int],
                                                         dict[tuple[str, str], int]]:
    """Per repository: open fixable Critical/High findings, and open known-exploited ones."""
    from daemon.store.trickle import fixable_severe, known_exploited

    with store.reading() as conn:
        return fixable_severe(conn, registry), known_exploited(conn, registry)


def clear_set_aside(store: Store, refs: Sequence[ArtifactRef]) -> None:
    """A report of each of these artifacts was stored: none of them is set aside any more."""
    from daemon.store import setaside

    if refs:
        with store.engine.begin() as conn:
            setaside.clear(conn, refs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
