"""`scanwatch run`: the long-running service.

One asyncio loop holds everything: APScheduler fires each ``[[schedule]]`` (and each digest
route) from a cronsim trigger; each firing runs one cycle (``service/cycle.py``) under the
registry locks; a delivery worker drains the outbox; the watchdog is petted from the loop; the
optional HTTP listener serves /metrics, /healthz, /readyz. SIGTERM stops new work at once (no
run starts, no scan is triggered: the stop request reaches every scan queue), follows the scans
already triggered for up to ``stop_timeout`` and exits as soon as none is left; what still runs
then stays with Harbor, the run is recorded ``interrupted`` and the next start resumes it. A
cycle still busy a little after that (a slow walk) is cancelled. SIGHUP reloads the
configuration, keeping the old one if the new one has problems.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import log
from daemon.config_types import Config, ScheduleConfig
from daemon.errors import ConfigError, ScanwatchError
from daemon.model import Severity
from daemon.service.cycle import deliver, run_cycle
from daemon.service.lifecycle import Signals, sd_notify, watchdog_interval, watchdog_loop
from daemon.service.metrics import Metrics
from daemon.service.scheduler import (
    RegistryLocks,
    add_cron_job,
    decide_catch_up,
    jitter_delay,
    make_scheduler,
    next_fire_times,
)

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)
RESUME_RESULTS = ("running", "interrupted")  # a run a stop or a crash cut short
DELIVERY_IDLE = 30.0  # seconds between outbox passes when nothing wakes the worker
FINISH_GRACE = 5.0  # seconds past stop_timeout for a run to record itself before it is cancelled


def utcnow() -> datetime:
    return datetime.now(UTC)


class QueueGauge:
    """Keeps the run's metrics live: ``scanwatch_queue_depth`` (scans selected and not yet
    ended), and the scans triggered and finished as each happens, so a scrape during a long
    run sees them move. What it counted is remembered: the end of the run adds only the rest
    (:meth:`add_rest`), nothing twice."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.open: dict[str, set[int]] = {}
        self.triggered: dict[str, int] = {}
        self.finished: dict[tuple[str, str], int] = {}
        self._ended: set[int] = set()

    def __call__(self, job: Any) -> None:
        registry = job.artifact.ref.registry
        waiting = self.open.setdefault(registry, set())
        (waiting.discard if job.outcome else waiting.add)(id(job))
        self.metrics.queue_depth.labels(registry).set(len(waiting))
        if job.outcome:
            if id(job) not in self._ended:
                self._ended.add(id(job))
                key = (registry, job.outcome)
                self.finished[key] = self.finished.get(key, 0) + 1
                self.metrics.scans_finished.labels(*key).inc()
        elif job.ours:  # just triggered by this run
            self.triggered[registry] = self.triggered.get(registry, 0) + 1
            self.metrics.scans_triggered.labels(registry).inc()

    def add_rest(self, reg: Any) -> None:
        """The run's final counts of ``reg`` (a ``RegistryRun``), less what was counted live."""
        m, name = self.metrics, reg.registry
        rest = reg.triggered - self.triggered.get(name, 0)
        if rest > 0:
            m.scans_triggered.labels(name).inc(rest)
        for outcome, count in reg.outcomes.items():
            rest = count - self.finished.get((name, outcome), 0)
            if rest > 0:
                m.scans_finished.labels(name, outcome).inc(rest)


class Daemon:
    def __init__(self, config_path: Path, config: Config) -> None:
        self.config_path = config_path
        self.config = config
        self.store: Store  # opened by start()
        self.metrics = Metrics()
        self.scheduler = make_scheduler()
        self.registry_locks = RegistryLocks()
        self.schedule_locks: dict[str, asyncio.Lock] = {}
        self.running: set[asyncio.Task[Any]] = set()
        self.signals = Signals(grace=self._stop_timeout, on_reload=self.request_reload)
        self.wake_delivery = asyncio.Event()
        self.last_result: dict[str, str] = {}
        self.background: set[asyncio.Task[Any]] = set()  # held so they are not collected
        self.cluster: Any = None  # PostgreSQL: several instances share the work (cluster.py)
        self.project_ids: dict[tuple[str, str], int] = {}  # Harbor's, for the pages' links
        self.pages: Any = None  # the read-only store behind the pages
        self.web: Any = None
        self._warming: asyncio.Task[None] | None = None  # the pages' plan after a run
        self.feed_fetched: dict[str, datetime | None] = {}  # feed → its good copy's fetch time

    # ---- life -------------------------------------------------------------------------------

    async def serve(self) -> int:
        # Signals first: a SIGTERM while the database opens is a clean stop, not a kill.
        self.signals.install(asyncio.get_running_loop())
        from daemon.store.db import open_configured_store

        self.store = open_configured_store(self.config)
        try:
            if self.store.engine.dialect.name == "postgresql":  # issue 19: leases, no lock
                from daemon.service.cluster import Cluster

                self.cluster = Cluster(self.store, self.config, cycle=self._cycle,
                                       now_fn=utcnow, wake_delivery=self.wake_delivery,
                                       running=self.running,
                                       stopping=lambda: self.signals.stop.requested,
                                       metrics=self.metrics, on_feeds=self.refresh_feeds)
            else:
                self.store.acquire_daemon_lock()
        except BaseException:
            self.store.close()
            raise
        for warning in self.config.warnings:
            _log.warning("config_warning", problem=warning)
        if self.signals.stop.requested:
            self.store.close()
            return 0
        listener = await self._start_http()
        helpers: list[asyncio.Future[Any]] = []
        if self.cluster is not None:
            helpers.append(await self.cluster.start())
        self._install_jobs()
        self.scheduler.start()
        helpers.append(asyncio.ensure_future(self._delivery_loop()))
        interval = watchdog_interval()
        if interval:
            helpers.append(asyncio.ensure_future(watchdog_loop(interval)))
        sd_notify("READY=1", f"STATUS={self._idle_status()}")
        _log.info("daemon_ready", schedules=[s.name for s in self.config.schedules],
                  database=_safe_db(self.store.url))
        if self.cluster is None:  # a cluster catches up per registry as it takes it
            self._start_catch_up()
        if self.web is not None:  # the plan of what runs before this start wrote
            self._warming = asyncio.create_task(self._warm_pages())
        try:
            await self.signals.stop.wait()
        finally:
            await self._stop(helpers, listener)
        return 0

    def _stop_timeout(self) -> float:
        return self.config.daemon.stop_timeout.total_seconds()

    async def _stop(self, helpers: list[asyncio.Future[Any]], listener: Any) -> None:
        # The runs' queues follow their scans until the stop request's deadline and then end
        # by themselves; the grace lets them record that before anything is cancelled.
        if not self.signals.stop.requested:  # ending for another reason than a signal
            self.signals.stop.request(self._stop_timeout(), "shutdown")
        timeout = (self.signals.stop.remaining() or 0.0) + FINISH_GRACE
        self.scheduler.pause()
        if self.running:
            _log.info("waiting_for_runs", runs=len(self.running),
                      timeout=round(self.signals.stop.remaining() or 0.0, 3))
            _, late = await asyncio.wait(set(self.running), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                _log.warning("runs_abandoned", runs=len(late),
                             note="Harbor keeps their scans; the next start resumes them")
                await asyncio.wait(late, timeout=5)
        self.scheduler.shutdown(wait=False)
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if listener is not None:
            await listener.stop()
        if self.cluster is not None:
            await self.cluster.close()
        if self.pages is not None:
            self.pages.close()
        self.store.close()
        _log.info("daemon_stopped")

    async def _start_http(self) -> Any:
        if not self.config.daemon.listen:
            return None
        from daemon.service.http import HttpListener

        secrets = {r.name: r.webhook_secret for r in self.config.registries
                   if r.webhook_secret is not None}
        hooks = None
        if secrets:
            from daemon.scan import fastpath
            from daemon.service.hooks import HookEndpoint, HookEvent

            queue: asyncio.Queue[HookEvent] = asyncio.Queue(maxsize=10000)
            hooks = HookEndpoint(secrets, self.metrics, queue)
            self._keep(fastpath.serve(self.config, queue, self._webhook_cycle))
        web = self._web()
        listener = HttpListener(self.metrics, self.readiness, hooks, web,
                                run=self.pages.thread.run if web is not None else None)
        await listener.start(self.config.daemon.listen)
        return listener

    def _web(self) -> Any:
        """The pages (daemon/web/) over a read-only store, with a password where configured."""
        from daemon.store.pages import read_only_store
        from daemon.web.app import WebApp
        from daemon.web.auth import BasicAuth, load_users

        users = self.config.daemon.web_users_file
        auth = BasicAuth(load_users(users) if users else None)
        self.pages = read_only_store(self.store.url)
        self.web = WebApp(self.config, self.pages, auth, self.project_ids)
        self.web.rebuild = self._count_plan
        return self.web

    def _count_plan(self) -> str:
        """The pages' remediation plan counted anew under the rules in force
        (``Store.build_plan``), from a thread other than the loop's: read on this one (a
        large registry's count takes seconds, which the runs' writes do not wait for), saved
        on the writer's."""
        rules, now = self.store.ignore_rules(self.config), utcnow()
        counted = self.store.count_plan(rules, now)
        return self.store.thread.submit(self.store.save_plan, counted, rules, now).result()

    async def _webhook_cycle(self, schedule: ScheduleConfig,
                             scope: frozenset[tuple[str, str]]) -> None:
        """A small run for webhook events: waits for a cron run on the registry to end."""
        if self.signals.stop.requested:
            return
        task = asyncio.current_task()
        assert task is not None
        self.running.add(task)
        try:
            if self.cluster is not None:  # the holder of the registry handles it
                await self.cluster.run_held(schedule, "webhook")
                return
            async with self.registry_locks.hold(schedule.registries):
                await self._cycle(schedule, "webhook", scope)
        finally:
            self.running.discard(task)

    def readiness(self) -> tuple[bool, str]:
        try:
            self.store.ping()
        except Exception as exc:  # noqa: BLE001 (any database failure means "not ready")
            return False, f"database unreachable: {type(exc).__name__}"
        failed = sorted(n for n, r in self.last_result.items() if r != "ok")
        if failed:
            return False, f"last run failed: {', '.join(failed)}"
        if self.cluster is not None:
            return True, f"ready; {self.cluster.readiness()}"
        return True, "ready"

    # ---- schedules --------------------------------------------------------------------------

    def _install_jobs(self) -> None:
        for job in self.scheduler.get_jobs():
            job.remove()
        for schedule in self.config.schedules:
            self.schedule_locks.setdefault(schedule.name, asyncio.Lock())
            add_cron_job(self.scheduler, f"schedule:{schedule.name}", schedule.cron,
                         schedule.timezone, self.fire, jitter=schedule.jitter,
                         kwargs={"name": schedule.name, "trigger": "schedule"})
        for feed in self.config.feeds:
            add_cron_job(self.scheduler, f"feed:{feed.name}", feed.schedule, feed.timezone,
                         self.refresh_feed, kwargs={"name": feed.name})
            self._watch_feed_age(feed.name)
        for source in self.config.vex:
            if source.url:
                add_cron_job(self.scheduler, f"vex:{source.name}", "23 * * * *", "UTC",
                             self.refresh_vex, kwargs={"name": source.name})
        for index, route in enumerate(self.config.routes):
            if route.group == "digest":
                add_cron_job(self.scheduler, f"digest:{index}", route.digest_cron,
                             route.digest_timezone, self.digest, kwargs={"index": index})

    async def refresh_feeds(self) -> None:
        """Every feed now (at start, and when this instance gains the ``feeds`` lease)."""
        for feed in self.config.feeds:
            await self.refresh_feed(feed.name)
        for source in self.config.vex:
            if source.url:
                await self.refresh_vex(source.name)

    def _feeds_token(self) -> tuple[bool, list[Any]]:
        """(may this instance fetch feeds, the tokens its writes are fenced with): alone, yes;
        in a cluster, only as the holder of the ``feeds`` lease."""
        if self.cluster is None:
            return True, []
        token = self.cluster.feeds_token()
        return token is not None, [token] if token is not None else []

    async def refresh_feed(self, name: str) -> None:
        """One refresh of an intel feed, beside the runs: it holds no schedule or registry
        lock, and a feed that fails only logs (``intel.refresh`` never raises for it). In a
        cluster only the ``feeds`` lease holder fetches; the others read the age of the copy
        it keeps, for their metric."""
        feed = self.config.feed(name)
        if feed is None or self.signals.stop.requested:
            return
        from daemon.intel.refresh import refresh
        from daemon.store.leases import LeaseLost, working_under

        allowed, tokens = self._feeds_token()
        if not allowed:
            from daemon.intel.refresh import stored_fetched_at

            self.feed_fetched[name] = await self.store.thread.run(
                stored_fetched_at, self.store, name)
            _log.debug("feed_left_to_lease_holder", feed=name)
            return
        try:
            with working_under(tokens):
                result = await refresh(self.config, self.store, feed, now_fn=utcnow)
        except LeaseLost as exc:  # the lease moved during the fetch: its new holder fetches
            _log.warning("feed_fenced", feed=name, error=str(exc))
            return
        except Exception:  # a bug, not a feed problem: logged, the daemon goes on
            _log.exception("feed_refresh_crashed", feed=name)
            return
        self.feed_fetched[name] = result.fetched_at
        if result.message_ids:
            self.wake_delivery.set()

    async def refresh_vex(self, name: str) -> None:
        """Refetch a ``[[vex]]`` URL hourly; its statements count from the next run on."""
        source = next((v for v in self.config.vex if v.name == name), None)
        if source is None or self.signals.stop.requested:
            return
        from daemon.intel.refresh import refresh_vex
        from daemon.store.leases import LeaseLost, working_under

        allowed, tokens = self._feeds_token()
        if not allowed:
            return
        try:
            with working_under(tokens):
                await refresh_vex(self.store, source, now_fn=utcnow)
        except LeaseLost as exc:
            _log.warning("feed_fenced", feed=f"vex:{name}", error=str(exc))
        except Exception:  # a bug, not a source problem: logged, the daemon goes on
            _log.exception("vex_refresh_crashed", vex=name)

    def _watch_feed_age(self, name: str) -> None:
        def age() -> float:  # at scrape time, from memory: no database work on the loop
            fetched = self.feed_fetched.get(name)
            return (utcnow() - fetched).total_seconds() if fetched else float("nan")

        self.metrics.feed_age.labels(name).set_function(age)

    def _start_catch_up(self) -> None:
        now = utcnow()
        for schedule in self.config.schedules:
            last = self.store.last_run(schedule.name)
            if last is not None and last.result in RESUME_RESULTS:
                _log.info("run_resuming", schedule=schedule.name, last_started=last.started_at)
                self._spawn(schedule.name, "resume", 0.0)
                continue
            decision = decide_catch_up(schedule.cron, schedule.timezone, schedule.on_missed,
                                       _aware(last.started_at) if last else None, now)
            if decision.missed_at is not None:
                _log.info("runs_missed", schedule=schedule.name, missed_at=decision.missed_at,
                          catch_up=decision.run_now, reason=decision.reason)
            if decision.run_now:
                self._spawn(schedule.name, "catch_up", jitter_delay(schedule.jitter))
        # Every feed now (a 304 where it is current): in a cluster, on the ``feeds`` holder.
        self._keep(self.refresh_feeds())

    def _spawn(self, name: str, trigger: str, delay: float) -> None:
        async def later() -> None:
            if delay:
                await asyncio.sleep(delay)
            await self.fire(name, trigger)

        self._keep(later())

    def _keep(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def fire(self, name: str, trigger: str = "schedule") -> None:
        """One cycle of schedule ``name``, unless it is running already or we are stopping."""
        if self.signals.stop.requested:
            return
        schedule = self.config.schedule(name)
        lock = self.schedule_locks.setdefault(name, asyncio.Lock())
        if schedule is None or (lock.locked() and self.cluster is None):
            _log.info("run_skipped", schedule=name,
                      reason="no longer configured" if schedule is None else "still running")
            return
        task = asyncio.current_task()
        assert task is not None
        self.running.add(task)
        try:
            if self.cluster is not None:  # per registry held here; cluster.py runs the cycle
                await self.cluster.fire(schedule, trigger)
                return
            async with lock, self.registry_locks.hold(schedule.registries):
                await self._cycle(schedule, trigger)
        finally:
            self.running.discard(task)
            sd_notify(f"STATUS={self._idle_status()}")

    async def _cycle(self, schedule: ScheduleConfig, trigger: str,
                     scope: frozenset[tuple[str, str]] | None = None) -> None:
        if self.cluster is not None:  # a cluster's cycle still waits for the registries here
            async with self.registry_locks.hold(schedule.registries):
                await self._run_cycle(schedule, trigger, scope)
            return
        await self._run_cycle(schedule, trigger, scope)

    async def _run_cycle(self, schedule: ScheduleConfig, trigger: str,
                         scope: frozenset[tuple[str, str]] | None = None) -> None:
        sd_notify(f"STATUS=running {schedule.name}")
        gauge = QueueGauge(self.metrics)
        try:
            cycle = await run_cycle(self.config, self.store, schedule, trigger=trigger,
                                    now_fn=utcnow, on_progress=gauge,
                                    stop=self.signals.stop, scope=scope)
        except ScanwatchError as exc:
            from daemon.store.leases import LeaseLost

            if isinstance(exc, LeaseLost):  # another instance has the registry now
                _log.warning("run_fenced", schedule=schedule.name, error=str(exc))
                return
            self.last_result[schedule.name] = "failed"
            self.metrics.runs.labels(schedule.name, "failed").inc()
            _log.error("run_failed", schedule=schedule.name, error=str(exc))
            return
        except Exception:
            self.last_result[schedule.name] = "failed"
            self.metrics.runs.labels(schedule.name, "failed").inc()
            _log.exception("run_crashed", schedule=schedule.name)
            return
        result = cycle.run.result
        self.last_result[schedule.name] = result
        self._observe(schedule.name, result, cycle.run, gauge)
        if cycle.message_ids:
            self.wake_delivery.set()
        if self.web is not None:  # the "Fix first" plan of the history just written, ahead
            self._warming = asyncio.create_task(self._warm_pages())

    async def _warm_pages(self) -> None:
        try:
            await asyncio.to_thread(self.web.warm)
        except Exception:  # the page computes it itself when asked
            _log.exception("pages_warm_failed")

    async def digest(self, index: int = 0) -> None:
        """A digest route's cron fired: queue what it owes (build_and_queue checks what is due)."""
        from daemon.alerts.group import context_for
        from daemon.alerts.outbox import build_and_queue
        from daemon.store.leases import working_under

        tokens = []
        if self.cluster is not None:  # only the holder of the route's clock builds its digest
            token = self.cluster.digest_token(index)
            if token is None:
                return
            tokens.append(token)
        ctx = context_for(self.config, name="digest", kind="digest")
        try:
            with working_under(tokens):
                queued = build_and_queue(self.store, self.config, run_context=ctx, now=utcnow())
        except ScanwatchError as exc:  # a lease lost under it: the successor builds it
            _log.warning("digest_fenced", error=str(exc))
            return
        if queued:
            self.wake_delivery.set()

    def _observe(self, schedule: str, result: str, run: Any, gauge: QueueGauge) -> None:
        m = self.metrics
        m.runs.labels(schedule, result).inc()
        if result == "ok" and run.finished_at is not None:
            m.last_success.labels(schedule).set(run.finished_at.timestamp())
        for reg in run.registries:
            self.project_ids.update({(reg.registry, p): pid for p, pid in reg.project_ids.items()})
            gauge.add_rest(reg)  # the scans counted as they happened, and the rest now
            m.api_calls.labels(reg.registry).inc(reg.calls)
            m.reports_unreadable.labels(reg.registry).inc(len(reg.unreadable))
            if reg.error:
                m.api_errors.labels(reg.registry).inc()
            m.queue_depth.labels(reg.registry).set(0)
            if reg.scanner_db_updated_at is not None:
                age = (utcnow() - reg.scanner_db_updated_at).total_seconds()
                m.scanner_db_age.labels(reg.registry).set(max(age, 0.0))
            if reg.images:  # a whole-registry run: the rescan trickle's coverage
                m.observe_coverage(reg, utcnow())
        counts = self.store.open_finding_counts()
        for severity in Severity:
            m.open_findings.labels(severity.label).set(counts.get(severity, 0))

    def _idle_status(self) -> str:
        parts = []
        for schedule in self.config.schedules:
            nxt = next_fire_times(schedule.cron, schedule.timezone, utcnow(), 1)[0]
            last = self.last_result.get(schedule.name, "not run yet")
            parts.append(f"{schedule.name}: next {nxt.isoformat(timespec='minutes')}, "
                         f"last {last}")
        return "; ".join(parts) or "no schedules"

    # ---- delivery ---------------------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        from daemon.store.leases import working_under

        while True:
            self.wake_delivery.clear()
            token = self.cluster.outbox_token() if self.cluster is not None else None
            try:
                if self.cluster is None:
                    await deliver(self.config, self.store, now_fn=utcnow, within=None,
                                  metrics=self.metrics)
                elif token is not None:  # one relay across the cluster: the outbox's holder
                    from daemon.alerts.deliver import apprise_send

                    with working_under([token]):
                        await deliver(self.config, self.store, now_fn=utcnow, within=None,
                                      metrics=self.metrics,
                                      sender=self.cluster.fenced_sender(apprise_send))
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("delivery_failed")
            # In a cluster the runs that queue alerts may be on other instances: poll at TTL/3.
            idle = DELIVERY_IDLE if self.cluster is None else self.cluster.ttl.total_seconds() / 3
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake_delivery.wait(), timeout=idle)

    # ---- reload -----------------------------------------------------------------------------

    def request_reload(self) -> None:
        self._keep(self._reload())

    async def _reload(self) -> None:
        from daemon import config as config_module

        sd_notify("RELOADING=1", "STATUS=reloading the configuration")
        try:
            new = config_module.load(self.config_path, strict=True)
        except ConfigError as exc:
            for problem in exc.problems:
                _log.error("config_reload_refused", path=str(self.config_path), problem=problem)
            _log.error("config_kept", path=str(self.config_path),
                       problems=len(exc.problems), note="the previous configuration stays")
            sd_notify("READY=1", f"STATUS={self._idle_status()}")
            return
        if (new.daemon.database or "") != (self.config.daemon.database or ""):
            _log.warning("config_reload_partial", note="the database changes at the next start")
        self.config = new  # its ignore rules are read at the start of each run
        if self.cluster is not None:
            self.cluster.reconfigure(new)
        if self.web is not None:
            self.web.config = new  # the pages' filters, links and SLA follow the new file
        self._install_jobs()
        _log.info("config_reloaded", schedules=[s.name for s in new.schedules])
        sd_notify("READY=1", f"STATUS={self._idle_status()}")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _safe_db(url: str) -> str:
    return log.scrub(url)


def run_daemon(config_path: Path, config: Config) -> int:
    return asyncio.run(Daemon(config_path, config).serve())
