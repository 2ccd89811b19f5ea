"""Several daemons on one PostgreSQL (issue 19): who fires which schedule, digest and relay.

Every instance runs the same configuration and the same cron jobs; what a firing does depends on
the leases this instance holds (``service/leases.py``):

* a schedule's fire time runs, on each instance, for the schedule's registries whose lease that
  instance holds, and only for those nobody fired yet at that time (``cron_fire``, fenced):
  once per fire time and registry across the cluster;
* when an instance gains a registry it looks at that registry's last fire time in the database:
  an unfinished fire of a predecessor is resumed (its scans are followed, not re-triggered), a
  missed one is caught up as ``on_missed`` says; a fire time that fell due during the take-over
  itself (within two TTLs) is run even with ``skip``: a few seconds of hand-over are not the
  downtime ``skip`` is about;
* a digest route's cron fires only on the holder of ``digest:ROUTE``;
* the outbox relay runs only on the holder of ``outbox``; it stops before the next send once the
  lease is gone locally, and its marks are fenced;
* the intel feeds (``[[feed]]``, ``[[vex]]`` URLs) are fetched only by the holder of ``feeds``
  (one conditional request per feed across the cluster, its writes fenced); an instance that
  gains it fetches at once, so a feed's age never waits for the next cron after a take-over.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon import log
from daemon.config_types import Config, ScheduleConfig
from daemon.service.leases import LeaseHolder
from daemon.service.scheduler import decide_catch_up, last_due
from daemon.store import leases as store_leases
from daemon.store.leases import LeaseLost, Token, working_under

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)
OUTBOX = "outbox"
FEEDS = "feeds"


def registry_unit(name: str) -> str:
    return f"registry:{name}"


def digest_unit(route_key: str) -> str:
    return f"digest:{route_key}"


def digest_keys(config: Config) -> list[str]:
    from daemon.alerts.route import route_keys

    return [key for key, route in zip(route_keys(config.routes), config.routes, strict=True)
            if route.group == "digest"]


def units_of(config: Config) -> list[str]:
    """Every unit of work the configuration has: its registries, digest routes, the relay,
    and the intel feeds when it has any."""
    feeds = [FEEDS] if config.feeds or any(v.url for v in config.vex) else []
    return ([registry_unit(r.name) for r in config.registries]
            + [digest_unit(k) for k in digest_keys(config)] + [OUTBOX] + feeds)


def fire_slot(schedule: ScheduleConfig, now: datetime) -> datetime:
    """The fire time a cron job firing ``now`` stands for (its jitter delays it after that)."""
    since = now - schedule.jitter - timedelta(seconds=61)
    due = last_due(schedule.cron, schedule.timezone, since, now)
    return (due or now.replace(second=0, microsecond=0)).astimezone(UTC)


Cycle = Callable[[ScheduleConfig, str], Awaitable[None]]


class Cluster:
    def __init__(self, store: Store, config: Config, *, cycle: Cycle,
                 now_fn: Callable[[], datetime], wake_delivery: asyncio.Event,
                 running: set[asyncio.Task[Any]] | None = None,
                 stopping: Callable[[], bool] = lambda: False, metrics: Any = None,
                 on_feeds: Callable[[], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.config = config
        self.cycle = cycle  # the daemon's _cycle: one run of a (restricted) schedule
        self.now_fn = now_fn
        self.wake_delivery = wake_delivery
        self.running = running if running is not None else set()  # the daemon waits for these
        self.stopping = stopping
        self.active: set[tuple[str, str]] = set()  # (schedule, registry) running here
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stop = asyncio.Event()
        self.metrics = metrics
        self.on_feeds = on_feeds  # the daemon's fetch of every feed, when ``feeds`` is gained
        self.holder = LeaseHolder(store.engine, units_of(config), config.daemon.lease_ttl,
                                  busy=self._busy, on_change=self._changed,
                                  on_tick=self._gauges)

    @property
    def ttl(self) -> timedelta:
        return self.config.daemon.lease_ttl

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.holder.units = units_of(config)

    # ---- life ----------------------------------------------------------------------------------

    async def start(self) -> asyncio.Task[Any]:
        self.loop = asyncio.get_running_loop()
        store_leases.set_stall_limit(self.ttl)
        await asyncio.to_thread(self.holder.tick)  # the first claims before the first cron
        return asyncio.ensure_future(self.holder.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.to_thread(self.holder.release_all)

    def _gauges(self, holder: LeaseHolder) -> None:
        if self.metrics is None:
            return
        self.metrics.cluster_instances.set(holder.live)
        held = {u: holder.held.get(u) for u in holder.held_units()}
        for unit in holder.units:
            lease = held.get(unit)
            self.metrics.lease_held.labels(unit).set(1 if lease is not None else 0)
            self.metrics.lease_epoch.labels(unit).set(lease.epoch if lease is not None else 0)

    def _busy(self, unit: str) -> bool:
        return any(registry_unit(r) == unit for _, r in self.active)

    def _changed(self, gained: set[str], lost: set[str]) -> None:
        """From the holder's thread: act on new units in the loop."""
        if self.loop is not None and gained:
            self.loop.call_soon_threadsafe(self._gained, sorted(gained))

    def _gained(self, units: list[str]) -> None:
        for unit in units:
            if unit == OUTBOX:
                self.wake_delivery.set()
            elif unit == FEEDS and self.on_feeds is not None:
                self._keep(self.on_feeds())
            elif unit.startswith("registry:"):
                self._keep(self._take_over(unit.removeprefix("registry:")))

    def _keep(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- schedules -----------------------------------------------------------------------------

    def tokens_for(self, registries: Sequence[str]) -> dict[str, Token]:
        out = {}
        for name in registries:
            token = self.holder.token(registry_unit(name))
            if token is not None:
                out[name] = token
        return out

    async def fire(self, schedule: ScheduleConfig, trigger: str,
                   due: datetime | None = None, adopt: Any = None) -> None:
        """One fire time of ``schedule`` for the registries held here and not fired yet."""
        if self.stopping():
            return
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        tokens = {r: tok for r, tok in self.tokens_for(schedule.registries).items()
                  if (schedule.name, r) not in self.active}
        if adopt is not None:
            tokens = {r: tok for r, tok in tokens.items() if r == adopt.registry}
        if not tokens:
            _log.debug("run_not_held_here", schedule=schedule.name)
            return
        due = due or fire_slot(schedule, self.now_fn())
        claimed = await asyncio.to_thread(self._claim, schedule.name, tokens, due, adopt)
        if not claimed:
            _log.info("run_fired_elsewhere", schedule=schedule.name, due=due.isoformat())
            return
        mine = {r: tokens[r] for r in claimed}
        keys = {(schedule.name, r) for r in mine}
        self.active |= keys
        try:
            part = dataclasses.replace(schedule, registries=tuple(sorted(mine)))
            with working_under(list(mine.values())):
                await self.cycle(part, trigger)
                try:
                    await asyncio.to_thread(self._finish, schedule.name, mine, due)
                except LeaseLost as exc:
                    _log.warning("run_fenced", schedule=schedule.name, error=str(exc))
        finally:
            self.active -= keys

    async def run_held(self, schedule: ScheduleConfig, trigger: str) -> None:
        """A run outside the cron times (a webhook's): for the registries held here, else
        nothing (the next cron run of the holder covers it)."""
        tokens = self.tokens_for(schedule.registries)
        if not tokens:
            _log.info("run_not_held_here", schedule=schedule.name, trigger=trigger)
            return
        part = dataclasses.replace(schedule, registries=tuple(sorted(tokens)))
        with working_under(list(tokens.values())):
            await self.cycle(part, trigger)

    def _claim(self, schedule: str, tokens: dict[str, Token], due: datetime,
               adopt: Any) -> list[str]:
        try:
            with self.store.engine.begin() as conn:
                now = store_leases.db_now(conn)
                if adopt is not None:
                    token = tokens[adopt.registry]
                    return [adopt.registry] if store_leases.adopt_fire(conn, adopt, token,
                                                                       now) else []
                return store_leases.claim_fires(conn, schedule, tokens, due, now)
        except LeaseLost as exc:
            _log.warning("run_fenced", schedule=schedule, error=str(exc))
            return []

    def _finish(self, schedule: str, tokens: dict[str, Token], due: datetime) -> None:
        with self.store.engine.begin() as conn:
            store_leases.finish_fires(conn, schedule, tokens, due, store_leases.db_now(conn))

    async def _take_over(self, registry: str) -> None:
        """A registry newly held: resume a predecessor's unfinished fire, or catch up."""
        for schedule in self.config.schedules:
            if registry not in schedule.registries:
                continue
            last = await asyncio.to_thread(self._last_fire, schedule.name, registry)
            if last is not None and last.finished_at is None \
                    and (schedule.name, registry) not in self.active:
                _log.info("run_resuming", schedule=schedule.name, registry=registry,
                          due=last.due_at.isoformat(), previous=last.instance)
                self._keep(self.fire(schedule, "resume", last.due_at, adopt=last))
                continue
            since = last.due_at if last is not None else None
            if since is None:
                run = await asyncio.to_thread(self.store.last_run, schedule.name)
                since = run.started_at if run is not None else None
            now = self.now_fn()
            decision = decide_catch_up(schedule.cron, schedule.timezone, schedule.on_missed,
                                       since, now)
            if decision.missed_at is None:
                continue
            recent = decision.missed_at >= now - 2 * self.ttl - schedule.jitter
            _log.info("runs_missed", schedule=schedule.name, registry=registry,
                      missed_at=decision.missed_at, catch_up=decision.run_now or recent,
                      reason=decision.reason if not recent else "fell due during a take-over")
            if decision.run_now or recent:
                self._keep(self.fire(schedule, "catch_up", decision.missed_at.astimezone(UTC)))

    def _last_fire(self, schedule: str, registry: str) -> Any:
        with self.store.engine.connect() as conn:
            return store_leases.last_fire(conn, schedule, registry)

    # ---- digests and the relay -----------------------------------------------------------------

    def digest_token(self, index: int) -> Token | None:
        from daemon.alerts.route import route_keys

        key = route_keys(self.config.routes)[index]
        return self.holder.token(digest_unit(key))

    def outbox_token(self) -> Token | None:
        return self.holder.token(OUTBOX)

    def feeds_token(self) -> Token | None:
        return self.holder.token(FEEDS)

    def fenced_sender(self, sender: Any) -> Any:
        """``sender``, refusing to send once the relay's lease is gone here (a resumed stall)."""
        async def send(url: str, title: str, body: str, body_format: str, **options: Any) -> Any:
            # ``options``: what the sender takes besides (message_id, text: alerts/deliver.py)
            if self.outbox_token() is None:
                raise LeaseLost("the outbox lease is no longer held here: sending stops")
            return await sender(url, title, body, body_format, **options)

        return send

    # ---- status --------------------------------------------------------------------------------

    def readiness(self) -> str:
        held = self.holder.held_units()
        what = ", ".join(held) if held else "nothing (standby)"
        return f"instance {self.holder.instance} holds {what}"
