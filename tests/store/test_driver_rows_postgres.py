"""``base.driver_rows`` streams on PostgreSQL through a server-side cursor for its own
statement only: the alerts read events with it inside the transaction that then inserts the
outbox rows (an executemany, which a server-side cursor refuses). The HA campaign on
PostgreSQL found the connection-wide option crashing every alert run."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from daemon.store import tables as t
from daemon.store.base import driver_rows
from daemon.store.db import open_store


def test_a_streamed_read_leaves_the_transactions_inserts_alone(pg_url: str) -> None:
    store = open_store(pg_url)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        with store.engine.begin() as conn:
            conn.execute(t.registry.insert(), [{"name": "a", "first_seen": now},
                                               {"name": "b", "first_seen": now}])
            names = [row[0] for row in driver_rows(conn, select(t.registry.c.name))]
            conn.execute(t.registry.insert(), [{"name": "c", "first_seen": now},
                                               {"name": "d", "first_seen": now}])
        with store.engine.connect() as conn:
            stored = sorted(conn.execute(select(t.registry.c.name)).scalars())
    finally:
        store.close()
    assert sorted(names) == ["a", "b"]
    assert stored == ["a", "b", "c", "d"]
