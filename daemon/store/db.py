"""The history database: engine, pragmas, migrations, the daemon lock, and the ``Store``.

``open_store(url)`` takes an SQLAlchemy URL (``[daemon] database``): ``sqlite:////path`` (WAL,
foreign keys, ``synchronous=NORMAL``, a busy timeout; the parent directory is created) or
``postgresql+psycopg://…``. It migrates the schema in place and returns a ``Store``, whose
record/query methods live in ``inventory.py``, ``history.py`` and ``queries.py``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from daemon import log
from daemon.config_types import Config
from daemon.errors import StoreError
from daemon.ignores import IgnoreRules
from daemon.store.base import sqlite_path
from daemon.store.inventory import InventoryMixin
from daemon.store.migrations import migrate
from daemon.store.queries import QueryMixin
from daemon.store.resolve import ResolveMixin

_log = log.get(__name__)

SQLITE_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL",
                  "busy_timeout=10000", "journal_size_limit=67108864")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` with scanwatch's connection settings (no migration)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"[daemon] database: {url!r} is not an SQLAlchemy URL") from exc
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {path.parent}: {exc.strerror}") from exc
    try:
        engine = create_engine(parsed)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"[daemon] database: cannot use {parsed!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_store(url: str) -> Store:
    """Open (creating and migrating in place as needed) the history database at ``url``."""
    engine = create_store_engine(url)
    where = str(sqlite_path(url) or make_url(url).render_as_string(hide_password=True))
    try:
        version = migrate(engine, where=where)
    except DBAPIError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database {where}: {exc.orig}") from exc
    except BaseException:
        engine.dispose()
        raise
    _log.debug("store_opened", database=where, schema_version=version)
    return Store(engine, url)


def open_configured_store(config: Config) -> Store:
    """The history database of ``config`` (``[daemon] database``)."""
    from daemon.config import default_database

    return open_store(config.daemon.database or default_database())


class Store(InventoryMixin, ResolveMixin, QueryMixin):
    """The history database's record and query methods (see the mixins)."""

    def ignore_rules(self, config: Config) -> IgnoreRules:
        """The ignore rules in force: ``config``'s and the Harbor allowlists last read for the
        registries that use them (the one value history, findings and alerts ask)."""
        rules = IgnoreRules.from_config(config, self.load_allowlists())
        if not config.vex:
            return rules
        from daemon.intel.vex_rules import vex_rules

        return rules.with_vex(vex_rules(self.engine, config))
