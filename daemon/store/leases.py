"""Leases on the shared database: which instance holds each unit of work, and fencing (issue 19).

A unit is a name: ``registry:NAME`` (its walk-and-scan queue and its schedules' fire times),
``digest:ROUTE`` (a digest route's clock), ``outbox`` (the relay that sends alerts). Its
``lease`` row says who holds it, until when (``expires_at``, the database's clock) and under
which ``epoch``; every take, by anyone, adds one to the epoch.

* ``claim`` takes free or expired units with ``FOR UPDATE SKIP LOCKED`` (two instances claiming
  at once never wait on or take the same row); ``renew`` extends only what is still held under
  the same epoch and not yet expired (an instance that stalled past its expiry must claim again,
  under a new epoch); ``release`` gives a unit back at once (a clean stop, or handing a unit to
  a newcomer).
* ``fair_share``: N live instances (heartbeat newer than the TTL) share M units, each taking at
  most ceil(M / N); alone, an instance takes everything.
* ``fence(conn, unit, epoch, holder)``, called first in a transaction that writes for a unit,
  locks the lease row ``FOR SHARE`` (a take-over waits for this transaction to end) and raises
  ``LeaseLost`` unless the unit is still held by ``holder`` under ``epoch`` and unexpired: the
  write rolls back. ``fence_current(conn)`` fences the tokens the calling task works under
  (``working_under``), and is a no-op outside the cluster (SQLite, one-shot commands).

Times come from the database (``clock_timestamp()`` on PostgreSQL), never from an instance's
clock, so clock skew between hosts does not move an expiry.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from daemon.errors import ScanwatchError
from daemon.store import tables as t


class LeaseLost(ScanwatchError):
    """A write for a unit this instance no longer holds under the epoch it started with."""


@dataclass(frozen=True)
class Token:
    """What a piece of work runs under: the unit, the epoch it was taken with, and by whom."""

    unit: str
    epoch: int
    holder: str


@dataclass(frozen=True)
class Held:
    unit: str
    epoch: int
    expires_at: datetime


@dataclass(frozen=True)
class LeaseRow:
    unit: str
    holder: str | None
    epoch: int
    acquired_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class InstanceRow:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen: datetime


def db_now(conn: Connection) -> datetime:
    """The database's clock (PostgreSQL: the wall clock now, not the transaction's start)."""
    if conn.dialect.name == "postgresql":
        value = conn.exec_driver_sql("SELECT clock_timestamp() AT TIME ZONE 'UTC'").scalar()
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


# ---- instances --------------------------------------------------------------------------------

def heartbeat(conn: Connection, instance: str, *, host: str, pid: int, version: str,
              now: datetime) -> None:
    """Say this instance is alive (insert it, or move its ``last_seen``)."""
    stmt = _insert(conn, t.instance).values(id=instance, host=host, pid=pid, version=version,
                                            started_at=now, last_seen=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"],
                                            set_={"last_seen": now}))


def forget_instance(conn: Connection, instance: str) -> None:
    conn.execute(t.instance.delete().where(t.instance.c.id == instance))


def instances(conn: Connection) -> list[InstanceRow]:
    c = t.instance.c
    return [InstanceRow(*r) for r in conn.execute(
        select(c.id, c.host, c.pid, c.version, c.started_at, c.last_seen)
        .order_by(c.last_seen.desc()))]


def live_count(conn: Connection, now: datetime, ttl: timedelta) -> int:
    c = t.instance.c
    return int(conn.execute(select(func.count()).where(c.last_seen > now - ttl)).scalar() or 0)


def prune_instances(conn: Connection, now: datetime, older_than: timedelta) -> None:
    """Drop instances not seen for ``older_than`` (a crashed host's row does not stay forever)."""
    conn.execute(t.instance.delete().where(t.instance.c.last_seen < now - older_than))


def fair_share(units: int, live: int) -> int:
    """The most units one of ``live`` instances takes: ceil(M / N), everything when alone."""
    return math.ceil(units / max(live, 1))


# ---- leases -----------------------------------------------------------------------------------

def ensure_units(conn: Connection, units: Sequence[str]) -> None:
    """Create the lease rows of ``units`` that do not exist yet (free, epoch 0)."""
    if not units:
        return
    stmt = _insert(conn, t.lease).values([{"unit": u, "holder": None, "epoch": 0,
                                           "acquired_at": None, "expires_at": None}
                                          for u in units])
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["unit"]))


def claim(conn: Connection, holder: str, units: Sequence[str], want: int, now: datetime,
          ttl: timedelta) -> list[Held]:
    """Take up to ``want`` of ``units`` that nobody holds or whose lease expired."""
    if want <= 0 or not units:
        return []
    c = t.lease.c
    free = conn.execute(
        select(c.unit, c.epoch)
        .where(c.unit.in_(list(units)), or_(c.holder.is_(None), c.expires_at <= now))
        .order_by(c.unit).limit(want).with_for_update(skip_locked=True)).all()
    taken = []
    for unit, epoch in free:
        conn.execute(t.lease.update().where(c.unit == unit).values(
            holder=holder, epoch=epoch + 1, acquired_at=now, expires_at=now + ttl))
        taken.append(Held(unit, epoch + 1, now + ttl))
    return taken


def renew(conn: Connection, holder: str, held: Sequence[Held], now: datetime,
          ttl: timedelta) -> list[Held]:
    """Extend what is still ours (same holder and epoch, not expired); the rest is lost."""
    c = t.lease.c
    kept = []
    for lease in held:
        done = conn.execute(t.lease.update().where(
            c.unit == lease.unit, c.holder == holder, c.epoch == lease.epoch,
            c.expires_at > now).values(expires_at=now + ttl))
        if done.rowcount:
            kept.append(Held(lease.unit, lease.epoch, now + ttl))
    return kept


def release(conn: Connection, holder: str, held: Sequence[Held], now: datetime) -> None:
    """Give ``held`` back at once: a successor can claim it without waiting for the expiry."""
    c = t.lease.c
    for lease in held:
        conn.execute(t.lease.update().where(c.unit == lease.unit, c.holder == holder,
                                            c.epoch == lease.epoch)
                     .values(holder=None, expires_at=now))


def leases(conn: Connection) -> list[LeaseRow]:
    c = t.lease.c
    return [LeaseRow(*r) for r in conn.execute(
        select(c.unit, c.holder, c.epoch, c.acquired_at, c.expires_at).order_by(c.unit))]


# ---- fencing ----------------------------------------------------------------------------------

_STALL_LIMIT_MS = 0  # PostgreSQL ends a fenced transaction idle this long (set_stall_limit)


def set_stall_limit(ttl: timedelta) -> None:
    """A process stopped (SIGSTOP, a frozen VM) inside a fenced transaction holds the lease
    row's share lock: PostgreSQL ends such a transaction once it has been idle for ``ttl``
    (``idle_in_transaction_session_timeout``), so a successor is never kept out for longer."""
    global _STALL_LIMIT_MS
    _STALL_LIMIT_MS = max(int(ttl.total_seconds() * 1000), 1)


def fence(conn: Connection, unit: str, epoch: int, holder: str) -> None:
    """Raise LeaseLost unless ``holder`` still holds ``unit`` under ``epoch``, unexpired.

    The lease row stays share-locked until the caller's transaction ends, so no take-over can
    commit between this check and the caller's commit.
    """
    c = t.lease.c
    if _STALL_LIMIT_MS and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {_STALL_LIMIT_MS}")
    row = conn.execute(select(c.holder, c.epoch, c.expires_at).where(c.unit == unit)
                       .with_for_update(read=True)).first()
    now = db_now(conn)
    if row is None or row.holder != holder or row.epoch != epoch or (
            row.expires_at is None or row.expires_at <= now):
        now_held = "nobody" if row is None or row.holder is None else row.holder
        raise LeaseLost(
            f"lease on {unit} lost (taken under epoch {epoch}; now epoch "
            f"{row.epoch if row else '-'}, held by {now_held}): this write is refused")


_WORKING_UNDER: ContextVar[tuple[Token, ...]] = ContextVar("scanwatch_lease_tokens", default=())


@contextlib.contextmanager
def working_under(tokens: Sequence[Token]) -> Iterator[None]:
    """Fence every write the current task (and the database work it queues) makes."""
    reset = _WORKING_UNDER.set(tuple(tokens))
    try:
        yield
    finally:
        _WORKING_UNDER.reset(reset)


def current_tokens() -> tuple[Token, ...]:
    return _WORKING_UNDER.get()


def fence_current(conn: Connection, *, serialize: str = "") -> None:
    """``fence`` each token the caller works under; with ``serialize``, also take a
    transaction-long PostgreSQL advisory lock of that name first (a read-then-write that
    two instances must not interleave, such as moving the alert cursors)."""
    if serialize and conn.dialect.name == "postgresql":
        key = zlib.crc32(serialize.encode())
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
    for token in _WORKING_UNDER.get():
        fence(conn, token.unit, token.epoch, token.holder)


# ---- cron fire times --------------------------------------------------------------------------

@dataclass(frozen=True)
class FireRow:
    schedule: str
    registry: str
    due_at: datetime
    instance: str
    epoch: int
    started_at: datetime
    finished_at: datetime | None


def claim_fires(conn: Connection, schedule: str, tokens: dict[str, Token], due: datetime,
                now: datetime) -> list[str]:
    """Record fire time ``due`` of ``schedule`` for the registries of ``tokens`` (registry →
    its lease token) nobody fired yet; return those registries. Fenced: only a holder fires."""
    got = []
    for registry, token in sorted(tokens.items()):
        fence(conn, token.unit, token.epoch, token.holder)
        stmt = _insert(conn, t.cron_fire).values(
            schedule=schedule, registry_name=registry, due_at=due, instance=token.holder,
            epoch=token.epoch, started_at=now, finished_at=None)
        done = conn.execute(stmt.on_conflict_do_nothing(
            index_elements=["schedule", "registry_name", "due_at"]))
        if done.rowcount:
            got.append(registry)
    return got


def adopt_fire(conn: Connection, fire: FireRow, token: Token, now: datetime) -> bool:
    """Take over an unfinished fire of a predecessor (to resume its run); False if it moved."""
    c = t.cron_fire.c
    fence(conn, token.unit, token.epoch, token.holder)
    done = conn.execute(t.cron_fire.update().where(
        c.schedule == fire.schedule, c.registry_name == fire.registry, c.due_at == fire.due_at,
        c.finished_at.is_(None), c.instance == fire.instance, c.epoch == fire.epoch)
        .values(instance=token.holder, epoch=token.epoch, started_at=now))
    return bool(done.rowcount)


def finish_fires(conn: Connection, schedule: str, tokens: dict[str, Token], due: datetime,
                 now: datetime) -> None:
    c = t.cron_fire.c
    for registry, token in sorted(tokens.items()):
        fence(conn, token.unit, token.epoch, token.holder)
        conn.execute(t.cron_fire.update().where(
            c.schedule == schedule, c.registry_name == registry, c.due_at == due,
            c.instance == token.holder, c.epoch == token.epoch).values(finished_at=now))


def last_fire(conn: Connection, schedule: str, registry: str) -> FireRow | None:
    c = t.cron_fire.c
    row = conn.execute(select(c.schedule, c.registry_name, c.due_at, c.instance, c.epoch,
                              c.started_at, c.finished_at)
                       .where(and_(c.schedule == schedule, c.registry_name == registry))
                       .order_by(c.due_at.desc()).limit(1)).first()
    return None if row is None else FireRow(*row)
