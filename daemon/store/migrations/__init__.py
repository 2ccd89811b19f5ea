"""The ordered schema migrations, applied in place at start (``migrate``).

Each migration module has ``VERSION``, ``DESCRIPTION`` and ``upgrade(conn)``; versions are 1, 2, …
without gaps. ``schema_version`` holds one row per applied version. A database whose version is
above ``LATEST`` was written by a newer scanwatch: it is refused before anything is written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType

from sqlalchemy import Column, Integer, MetaData, String, Table, func, inspect, select
from sqlalchemy.engine import Connection, Engine

from daemon.errors import SchemaTooNew
from daemon.store.migrations import (
    m0001_initial,
    m0002_notifications,
    m0003_alert_cursor,
    m0004_allowlists,
    m0005_notified_change,
    m0006_query_indexes,
    m0007_set_aside,
    m0008_leases,
    m0009_event_time_indexes,
    m0010_content_finding,
    m0011_lineage,
    m0012_ignore_rules,
    m0013_run_summary,
    m0014_intel,
    m0015_carrier_versions,
    m0016_lineage_platforms,
    m0017_harbor_projects,
    m0018_cvss,
    m0019_covering_carriers,
    m0020_plan,
    m0021_page_summary,
    m0022_lineage_inputs,
    m0023_carrier_summary,
    m0024_artifact_digest,
    m0025_ignore_ids_kept,
)
from daemon.store.tables import UTCDateTime


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    upgrade: Callable[[Connection], None]


def _of(module: ModuleType) -> Migration:
    return Migration(module.VERSION, module.DESCRIPTION, module.upgrade)


MIGRATIONS: tuple[Migration, ...] = (
    _of(m0001_initial), _of(m0002_notifications), _of(m0003_alert_cursor),
    _of(m0004_allowlists), _of(m0005_notified_change), _of(m0006_query_indexes),
    _of(m0007_set_aside), _of(m0008_leases), _of(m0009_event_time_indexes),
    _of(m0010_content_finding), _of(m0011_lineage), _of(m0012_ignore_rules),
    _of(m0013_run_summary), _of(m0014_intel), _of(m0015_carrier_versions),
    _of(m0016_lineage_platforms), _of(m0017_harbor_projects), _of(m0018_cvss),
    _of(m0019_covering_carriers), _of(m0020_plan), _of(m0021_page_summary),
    _of(m0022_lineage_inputs), _of(m0023_carrier_summary),
    _of(m0024_artifact_digest), _of(m0025_ignore_ids_kept))
LATEST = MIGRATIONS[-1].version
_MIGRATION_LOCK = 0x5C4E_3A7D  # pg_advisory_lock key: "scanwatch migration"

_md = MetaData()
schema_version = Table(
    "schema_version", _md,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)


def current_version(conn: Connection) -> int:
    """The schema version of the database: 0 when it is empty."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def migrate(engine: Engine, *, target: int = LATEST, where: str = "") -> int:
    """Bring the database to ``target``, one transaction per migration; return the version.

    Raises SchemaTooNew (before writing anything) when the database is newer than this code.
    On PostgreSQL, instances starting at once migrate one after the other (issue 19).
    """
    with _one_at_a_time(engine):
        return _migrate(engine, target, where)


@contextlib.contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
            conn.commit()


def _migrate(engine: Engine, target: int, where: str) -> int:
    with engine.connect() as conn:
        found = current_version(conn)
        conn.rollback()
    if found > LATEST:
        raise SchemaTooNew(
            f"{where or 'the database'} has schema version {found}, newer than this scanwatch "
            f"understands ({LATEST}); upgrade scanwatch or point [daemon] database elsewhere"
        )
    for migration in MIGRATIONS:
        if found < migration.version <= target:
            with engine.begin() as conn:
                if migration.version == 1:
                    schema_version.create(conn, checkfirst=True)
                migration.upgrade(conn)
                conn.execute(schema_version.insert().values(
                    version=migration.version, description=migration.description,
                    applied_at=datetime.now(UTC)))
            found = migration.version
    return found
