"""Leases and fencing on a real PostgreSQL (issue 19): claims, take-over epochs, fair shares,
SKIP LOCKED, and a stale holder's writes rolled back."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from daemon.service.leases import LeaseHolder
from daemon.store import leases
from daemon.store import tables as t
from daemon.store.db import open_store
from daemon.store.leases import LeaseLost, Token, working_under
from tests.store.store_helpers import REG, artifact, at, success

TTL = timedelta(seconds=30)
UNITS = [f"registry:r{i}" for i in range(5)]


def test_claims_take_free_units_and_a_take_over_raises_the_epoch(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        with store.engine.begin() as conn:
            leases.ensure_units(conn, UNITS)
            now = leases.db_now(conn)
            first = leases.claim(conn, "a", UNITS, 2, now, TTL)
        assert [(h.unit, h.epoch) for h in first] == [("registry:r0", 1), ("registry:r1", 1)]
        with store.engine.begin() as conn:
            now = leases.db_now(conn)
            # b cannot take what a holds; it gets the next free ones
            second = leases.claim(conn, "b", UNITS, 5, now, TTL)
            assert [h.unit for h in second] == UNITS[2:]
            # a's lease runs out: b takes r0 over under epoch 2, and a can no longer renew it
            later = now + TTL + timedelta(seconds=1)
            taken = leases.claim(conn, "b", ["registry:r0"], 1, later, TTL)
            assert [(h.unit, h.epoch) for h in taken] == [("registry:r0", 2)]
            assert [h.unit for h in leases.renew(conn, "a", first, later, TTL)] == []
            # released units are free at once, and the next take raises the epoch again
            leases.release(conn, "b", taken, later)
            again = leases.claim(conn, "c", ["registry:r0"], 1, later, TTL)
            assert [(h.unit, h.epoch) for h in again] == [("registry:r0", 3)]
        rows = {r.unit: (r.holder, r.epoch) for r in leases.leases(store.engine.connect())}
        assert rows["registry:r0"] == ("c", 3) and rows["registry:r4"] == ("b", 1)
    finally:
        store.close()


def test_two_claims_at_once_skip_each_others_rows_instead_of_waiting(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        with store.engine.begin() as conn:
            leases.ensure_units(conn, UNITS)
        first = store.engine.connect()
        tx = first.begin()
        got_a = leases.claim(first, "a", UNITS, 3, leases.db_now(first), TTL)  # not committed
        started = time.monotonic()
        with store.engine.begin() as conn:
            got_b = leases.claim(conn, "b", UNITS, 5, leases.db_now(conn), TTL)
        assert time.monotonic() - started < 2  # did not wait for a's transaction
        tx.commit()
        first.close()
        assert {h.unit for h in got_a} & {h.unit for h in got_b} == set()
        assert len(got_a) + len(got_b) == len(UNITS)
    finally:
        store.close()


def test_three_holders_share_five_units_at_most_two_each_and_one_alone_takes_all(
    pg_url: str,
) -> None:
    store = open_store(pg_url)
    holders = [LeaseHolder(store.engine, UNITS, TTL, instance=f"i{n}") for n in range(3)]
    try:
        holders[0].tick()
        assert holders[0].held_units() == UNITS  # alone: ceil(5 / 1)
        for holder in holders[1:]:
            holder.tick()
        for _ in range(4):  # the first hands units over one per tick, the others take them
            for holder in holders:
                holder.tick()
        counts = sorted(len(h.held_units()) for h in holders)
        assert counts == [1, 2, 2]
        held = [u for h in holders for u in h.held_units()]
        assert sorted(held) == UNITS  # each unit held exactly once
        holders[2].release_all()  # a clean stop gives its units back at once
        for holder in holders[:2]:
            holder.tick()
        assert sorted(u for h in holders[:2] for u in h.held_units()) == UNITS
    finally:
        for holder in holders:
            holder._drop_connection()
        store.close()


def test_a_stale_holders_writes_roll_back_and_the_successors_commit(pg_url: str) -> None:
    store = open_store(pg_url)
    unit = f"registry:{REG}"
    try:
        with store.engine.begin() as conn:
            leases.ensure_units(conn, [unit])
            (old,) = leases.claim(conn, "a", [unit], 1, leases.db_now(conn), TTL)
        stale = Token(unit, old.epoch, "a")
        with working_under([stale]):
            store.record_inventory(REG, [artifact("sha256:a", "latest")], at(0))
        with store.engine.begin() as conn:  # a stalls past its expiry; b takes the unit over
            later = leases.db_now(conn) + TTL + timedelta(seconds=1)
            conn.execute(t.lease.update().where(t.lease.c.unit == unit)
                         .values(expires_at=leases.db_now(conn)))
            (new,) = leases.claim(conn, "b", [unit], 1, later - TTL, TTL)
        assert new.epoch == old.epoch + 1
        before = _counts(store)
        with working_under([stale]):
            with pytest.raises(LeaseLost, match=f"lease on {unit} lost .*epoch 1.* held by b"):
                store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical"], at(1)),
                                  at(1))
            with pytest.raises(LeaseLost):
                store.record_inventory(REG, [artifact("sha256:b", "latest")], at(1))
            with pytest.raises(LeaseLost):
                store.record_run_start("nightly", at(1))
        assert _counts(store) == before  # nothing of it was written
        with working_under([Token(unit, new.epoch, "b")]):
            store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical"], at(2)),
                              at(2))
        assert _counts(store)["scan"] == before["scan"] + 1
    finally:
        store.close()


def test_a_take_over_waits_for_a_fenced_write_in_progress(pg_url: str) -> None:
    """The fence share-locks the lease row: the claim of an expired lease cannot commit in the
    middle of the holder's transaction, only after it (and then the holder's next write fails)."""
    store = open_store(pg_url)
    unit = "outbox"
    try:
        with store.engine.begin() as conn:
            leases.ensure_units(conn, [unit])
            (held,) = leases.claim(conn, "a", [unit], 1, leases.db_now(conn), TTL)
        writer = store.engine.connect()
        tx = writer.begin()
        leases.fence(writer, unit, held.epoch, "a")
        claimed: list[int] = []

        def take() -> None:
            with store.engine.begin() as conn:
                far = leases.db_now(conn) + TTL * 2
                # SKIP LOCKED: a share-locked row is skipped, not waited for
                claimed.extend(h.epoch for h in leases.claim(conn, "b", [unit], 1, far, TTL))

        thread = threading.Thread(target=take)
        thread.start()
        thread.join(10)
        assert claimed == []
        tx.commit()
        writer.close()
        take()
        assert claimed == [held.epoch + 1]
    finally:
        store.close()


def _counts(store: object) -> dict[str, int]:
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                for name, table in (("scan", t.scan), ("artifact", t.artifact),
                                    ("schedule_run", t.schedule_run), ("finding", t.finding))}
