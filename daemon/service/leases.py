"""The daemon's side of the leases (issue 19): heartbeat, claim, renew, hand over, release.

``LeaseHolder.tick`` runs every TTL/3 on a dedicated database connection (never the one the
runs write on, so a long import cannot delay a renewal) in a thread of its own:

1. heartbeat this instance; count the live ones (N) and the units (M);
2. renew what it holds: a unit it cannot renew (expired, or taken over under a newer epoch) is
   lost at once, and the work under it stops writing (fencing refuses its writes anyway);
3. claim free or expired units up to ceil(M / N) (``FOR UPDATE SKIP LOCKED``);
4. above its share (a newcomer arrived), hand one idle unit back per tick.

A unit also counts as lost locally once TTL has passed since the start of the last renewal that
succeeded (a stalled process, a database that stopped answering): ``token`` then says None
before the database's expiry, so work never outlives the lease on this side either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from daemon import __version__, log
from daemon.store import leases as store_leases
from daemon.store.leases import Held, Token

_log = log.get(__name__)


def new_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseHolder:
    def __init__(self, engine: Engine, units: Sequence[str], ttl: timedelta, *,
                 busy: Callable[[str], bool] = lambda unit: False,
                 on_change: Callable[[set[str], set[str]], None] | None = None,
                 on_tick: Callable[[LeaseHolder], None] | None = None,
                 instance: str = "") -> None:
        self.engine = engine
        self.units = list(dict.fromkeys(units))
        self.ttl = ttl
        self.instance = instance or new_instance_id()
        self.busy = busy
        self.on_change = on_change  # (gained, lost), called from the tick's thread
        self.on_tick = on_tick  # after every tick (the daemon's gauges)
        self.held: dict[str, Held] = {}
        self._valid_until: dict[str, float] = {}  # monotonic deadline of each held unit
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.live = 1
        self.last_error = ""

    # ---- what the daemon asks ------------------------------------------------------------------

    def token(self, unit: str) -> Token | None:
        """The token to work on ``unit`` under, if it is held now (locally within the TTL)."""
        with self._lock:
            lease = self.held.get(unit)
            if lease is None or time.monotonic() >= self._valid_until.get(unit, 0.0):
                return None
            return Token(unit, lease.epoch, self.instance)

    def holds(self, unit: str) -> bool:
        return self.token(unit) is not None

    def held_units(self) -> list[str]:
        return sorted(u for u in list(self.held) if self.holds(u))

    # ---- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.ttl.total_seconds() / 3
        while not stop.is_set():
            await asyncio.to_thread(self.tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    def tick(self) -> None:
        started = time.monotonic()
        before = set(self.held_units())
        try:
            self._tick(started)
            self.last_error = ""
        except SQLAlchemyError as exc:
            self.last_error = type(exc).__name__
            _log.warning("lease_renewal_failed", error=log.scrub(str(exc).splitlines()[0]),
                         held=sorted(self.held))
            self._drop_connection()
        self._expire_locally()
        after = set(self.held_units())
        if self.on_change is not None and before != after:
            self.on_change(after - before, before - after)
        if self.on_tick is not None:
            self.on_tick(self)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
            if self._conn.dialect.name == "postgresql":  # stopped mid-claim: locks not kept
                ms = max(int(self.ttl.total_seconds() * 1000), 1)
                self._conn.exec_driver_sql(f"SET idle_in_transaction_session_timeout = {ms}")
                self._conn.commit()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None

    def _tick(self, started: float) -> None:
        conn = self._connection()
        with conn.begin():
            now = store_leases.db_now(conn)
            store_leases.heartbeat(conn, self.instance, host=socket.gethostname(),
                                   pid=os.getpid(), version=__version__, now=now)
            store_leases.prune_instances(conn, now, self.ttl * 20)
            store_leases.ensure_units(conn, self.units)
            kept = store_leases.renew(conn, self.instance, list(self.held.values()), now,
                                      self.ttl)
            live = store_leases.live_count(conn, now, self.ttl)
        share = store_leases.fair_share(len(self.units), live)
        lost = set(self.held) - {h.unit for h in kept}
        for unit in sorted(lost):
            _log.warning("lease_lost", unit=unit, epoch=self.held[unit].epoch)
        self._set({h.unit: h for h in kept}, started)
        if len(kept) < share:
            with conn.begin():
                now = store_leases.db_now(conn)
                gained = store_leases.claim(conn, self.instance, self.units, share - len(kept),
                                            now, self.ttl)
            for lease in gained:
                _log.info("lease_taken", unit=lease.unit, epoch=lease.epoch)
            self._set({**self.held, **{h.unit: h for h in gained}}, started)
        elif len(kept) > share:
            idle = [h for h in kept if not self.busy(h.unit)]
            if idle:
                give = idle[-1]
                with self._lock:  # stop using it before the database hears of it
                    self.held.pop(give.unit, None)
                with conn.begin():
                    store_leases.release(conn, self.instance, [give],
                                         store_leases.db_now(conn))
                _log.info("lease_handed_over", unit=give.unit, share=share, live=live)
        self.live = live

    def _set(self, held: dict[str, Held], started: float) -> None:
        deadline = started + self.ttl.total_seconds()
        with self._lock:
            for unit in held:
                self._valid_until[unit] = deadline
            self.held = dict(held)

    def _expire_locally(self) -> None:
        now = time.monotonic()
        with self._lock:
            for unit in [u for u in self.held if self._valid_until.get(u, 0.0) <= now]:
                _log.warning("lease_expired_locally", unit=unit)
                self.held.pop(unit)

    def release_all(self) -> None:
        """A clean stop: give everything back and leave the instance table at once."""
        held = list(self.held.values())
        with self._lock:
            self.held = {}
        try:
            conn = self._connection()
            with conn.begin():
                store_leases.release(conn, self.instance, held, store_leases.db_now(conn))
                store_leases.forget_instance(conn, self.instance)
            _log.info("leases_released", units=[h.unit for h in held])
        except SQLAlchemyError as exc:
            _log.warning("lease_release_failed", error=type(exc).__name__,
                         note="the leases expire by themselves")
        finally:
            self._drop_connection()

    def describe(self) -> dict[str, Any]:
        return {"instance": self.instance, "live": self.live, "held": self.held_units()}
