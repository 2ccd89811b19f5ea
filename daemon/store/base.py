"""What every aggregate module of the store shares: the SQLite file of a URL, the caches a
``Store`` owns (``Caches``) and the registry id lookup."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Select, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql.compiler import SQLCompiler

from daemon.store import tables as t
from daemon.store.content import ContentCache


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def driver_rows(conn: Connection, stmt: Executable, params: Mapping[str, Any] | None = None,
                ) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` for a listing of every finding, streamed, at the least cost per row.

    On SQLite, the driver's own tuples, read from its cursor as the statement steps (a fifth
    of the cost of SQLAlchemy's rows, which is most of a registry-wide listing): values are as
    sqlite3 returns them, times as text and booleans as 0/1 (``tables.as_utc``, ``bool``).
    Elsewhere SQLAlchemy's rows, streamed (``yield_per``: a server-side cursor on PostgreSQL),
    whose values the same conversions accept."""
    if conn.dialect.name != "sqlite":
        # On the statement, not the connection: ``Connection.execution_options`` changes the
        # connection itself, and every later statement of its transaction (an executemany
        # insert among them, which a server-side cursor refuses) would stream too.
        yield from conn.execute(stmt.execution_options(yield_per=2000), params or {})
        return
    result = conn.execute(stmt, params or {})
    cursor = result.cursor
    try:
        while batch := cursor.fetchmany(2000):
            yield from batch
    finally:
        result.close()


def driver_rows_each(conn: Connection, stmt: Select[Any],
                     each: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` run once for each of ``each`` (its parameters), in turn: for many
    small lookups. On SQLite the statement is compiled once and run on the driver's cursor
    (SQLAlchemy's execution costs more than such a lookup); elsewhere SQLAlchemy's rows,
    each lookup's read at once (streamed, each would open and close a server-side cursor on
    PostgreSQL: three round trips for a few rows)."""
    if conn.dialect.name != "sqlite":
        for params in each:
            yield from conn.execute(stmt, params)
        return
    compiled = stmt.compile(dialect=conn.dialect)
    assert isinstance(compiled, SQLCompiler)
    sql, order = str(compiled), compiled.positiontup or []
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        for params in each:
            values = compiled.construct_params(params) or {}
            yield from cursor.execute(sql, [values[k] for k in order]).fetchall()
    finally:
        cursor.close()


@dataclass
class Caches:
    """What a Store remembers between transactions: decoded report contents (rows never
    change) and registry ids (a registry row is never deleted). Used from one thread only."""

    contents: ContentCache = field(default_factory=ContentCache)
    registry_ids: dict[str, int] = field(default_factory=dict)


def registry_id(conn: Connection, caches: Caches, name: str, now: datetime | None, *,
                create: bool) -> int | None:
    """The id of registry ``name``; created (first seen ``now``) with ``create``, else None
    when history does not know it."""
    found = caches.registry_ids.get(name)
    if found is not None:
        return found
    row = conn.execute(select(t.registry.c.id).where(t.registry.c.name == name)).first()
    if row is None:
        if not create:
            return None
        conn.execute(t.registry.insert().values(name=name, first_seen=now))
        row = conn.execute(select(t.registry.c.id).where(t.registry.c.name == name)).one()
    caches.registry_ids[name] = int(row[0])
    return int(row[0])


def repository_ids(conn: Connection, registry: str) -> set[int]:
    """The ids of ``registry``'s repositories. A lookup of a batch of digests or report ids
    reads them by their own index and keeps the rows of these: given the registry in SQL
    instead, SQLite's planner walks every repository of the registry for each value of the
    batch (65 ms a batch of 100 report ids at 100,000 artifacts; under 1 ms by their index)."""
    r, g = t.repository.c, t.registry.c
    return set(conn.execute(select(r.id).join(t.registry, g.id == r.registry_id)
                            .where(g.name == registry)).scalars())
