"""State shared by the Store's mixins: the engine, caches, id lookups and the daemon lock."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from daemon.errors import DatabaseLocked
from daemon.store import tables as t
from daemon.store.content import ContentCache
from daemon.store.worker import DatabaseThread

if TYPE_CHECKING:
    from daemon.store.db import Store

_PG_LOCK_KEY = 0x5C4E_3A7C  # pg_advisory_lock key: "scanwatch daemon"


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class StoreBase:
    """Engine, caches and id lookups shared by the record and query mixins."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.contents = ContentCache()
        self.thread = DatabaseThread()  # where async callers run this store's work
        self._registry_ids: dict[str, int] = {}
        self._lock_file: IO[str] | None = None
        self._lock_conn: Connection | None = None

    # --- ids ------------------------------------------------------------------------------
    def _registry_id(self, conn: Connection, name: str, now: Any, *, create: bool) -> int | None:
        found = self._registry_ids.get(name)
        if found is not None:
            return found
        row = conn.execute(select(t.registry.c.id).where(t.registry.c.name == name)).first()
        if row is None:
            if not create:
                return None
            conn.execute(t.registry.insert().values(name=name, first_seen=now))
            row = conn.execute(select(t.registry.c.id).where(t.registry.c.name == name)).one()
        self._registry_ids[name] = int(row[0])
        return int(row[0])

    # --- lifecycle ------------------------------------------------------------------------
    def acquire_daemon_lock(self) -> None:
        """Refuse a second daemon on the same database (DatabaseLocked, with a clear message).

        SQLite: an exclusive ``flock`` on ``<db>.lock`` beside the file. PostgreSQL: a
        session advisory lock on a connection held until ``close``.
        """
        path = sqlite_path(self.url)
        if path is not None:
            lock_path = path.with_name(path.name + ".lock")
            handle = open(lock_path, "a+")  # noqa: SIM115 (held open until close())
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise DatabaseLocked(
                    f"{path} is in use by another scanwatch daemon (pid {holder}); "
                    "stop it first or give this one another [daemon] database"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._lock_file = handle
            return
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_PG_LOCK_KEY})").scalar()
            conn.commit()
            if not got:
                conn.close()
                raise DatabaseLocked(
                    "the PostgreSQL database is in use by another scanwatch daemon; stop it "
                    "first or give this one another [daemon] database"
                )
            self._lock_conn = conn

    def release_daemon_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
        if self._lock_conn is not None:
            try:
                self._lock_conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})")
                self._lock_conn.close()
            except SQLAlchemyError:
                pass
            self._lock_conn = None

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /readyz)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.thread.close()
        self.release_daemon_lock()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        self.close()
