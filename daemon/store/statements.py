"""The statements the record path runs per scan, built once with bind parameters.

Building a Core statement costs far more than running a cached one (``insert().values(...)``,
``update(...).where(...)`` compile their cache key on every call), so the hot path only ever
executes these with parameter dicts, one at a time or as an executemany. Lists go through
expanding parameters so that one compiled form serves every length.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.engine import Connection, Dialect

from daemon.store import tables as t
from daemon.store.tables import UTCDateTime


class Instant(UTCDateTime):
    """``UTCDateTime`` for executemany binds that repeat one instant (a batch's ``now``).

    The conversion (to UTC, then to the driver's form) is the column type's own; it is only
    remembered for the last value seen, by identity, so that 60,000 rows stamped with the same
    ``now`` convert it once. The memo is one tuple swapped whole, so threads sharing the
    compiled statement never see a value paired with another value's conversion.
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        inner = super().bind_processor(dialect)
        if inner is None:
            return None
        convert = inner
        memo: list[tuple[object, Any]] = [(object(), None)]

        def process(value: datetime | None) -> Any:
            if value is None:
                return None
            last = memo[0]
            if value is last[0]:
                return last[1]
            out = convert(value)
            memo[0] = (value, out)
            return out

        return process


def _when(name: str) -> Any:
    return bindparam(name, type_=Instant())

_a, _r, _s, _f, _tg, _rc = (t.artifact.c, t.repository.c, t.scan.c, t.finding.c, t.tag.c,
                            t.report_content.c)


def _ids(name: str = "ids") -> Any:
    return bindparam(name, expanding=True)


# --- reading ------------------------------------------------------------------------------
_ART_COLUMNS = (
    _a.id, _a.repository_id, _a.digest, _r.project, _r.name, _a.first_seen, _a.removed_at,
    _a.content_id, _a.counting, _a.last_scan_id, _a.last_success_scan_id,
    _a.consecutive_failures, _r.first_seen.label("repo_first_seen"),
    _s.status.label("last_status"), _s.content_hash.label("last_hash"),
    _s.log_excerpt.label("last_excerpt"))

# One artifact (with its repository's first sighting and its last scan) by its identity.
ARTIFACT: Any = (select(*_ART_COLUMNS)
            .join(t.repository, _r.id == _a.repository_id)
            .outerjoin(t.scan, _s.id == _a.last_scan_id)
            .where(_r.registry_id == bindparam("registry_id"),
                   _r.project == bindparam("project"), _r.name == bindparam("repository"),
                   _a.digest == bindparam("digest")))

# Many at once (the caller keeps the rows whose (project, name, digest) it asked for).
ARTIFACTS: Any = (select(*_ART_COLUMNS)
             .join(t.repository, _r.id == _a.repository_id)
             .outerjoin(t.scan, _s.id == _a.last_scan_id)
             .where(_r.registry_id == bindparam("registry_id"), _r.project.in_(_ids("projects")),
                    _r.name.in_(_ids("names")), _a.digest.in_(_ids("digests"))))

REPOSITORY_ID: Any = select(_r.id).where(
    _r.registry_id == bindparam("registry_id"), _r.project == bindparam("project"),
    _r.name == bindparam("repository"))

FINDINGS: Any = select(
    _f.id, _f.vulnerability, _f.package, _f.severity, _f.fix_version, _f.installed_versions,
    _f.resolved_at.is_not(None).label("resolved"), _f.ignored, _f.ignore_reason,
).where(_f.repository_id == bindparam("repository_id"))

CONTENT_IDS: Any = select(_rc.content_hash, _rc.id).where(_rc.content_hash.in_(_ids("hashes")))
CONTENT_BLOB: Any = select(_rc.occurrences).where(_rc.id == bindparam("content_id"))
COUNTING_CONTENTS: Any = select(_a.id, _a.content_id).where(
    _a.repository_id == bindparam("repository_id"), _a.counting.is_(True),
    _a.content_id.is_not(None))


def _predecessors() -> Any:
    me: Any = bindparam("artifact_id")
    mine = select(_tg.repository_id, _tg.name).where(
        _tg.artifact_id == me, _tg.until.is_(None)).subquery()
    other = t.tag.alias("other")
    open_tag = (select(other.c.id).where(other.c.artifact_id == _a.id, other.c.until.is_(None))
                .correlate(t.artifact).exists())
    return (select(_a.id, _a.digest, _a.content_id, _a.counting, _a.last_success_scan_id,
                   open_tag.label("tagged"), func.max(_tg.until).label("until"))
            .join(t.tag, _tg.artifact_id == _a.id)
            .join(mine, (mine.c.repository_id == _tg.repository_id) & (mine.c.name == _tg.name))
            .where(_a.id != me, _tg.until.is_not(None), _a.content_id.is_not(None))
            .group_by(_a.id, _a.digest, _a.content_id, _a.counting, _a.last_success_scan_id)
            .order_by(func.max(_tg.until).desc()))


def _may_have_predecessors() -> Any:
    """Of the given artifacts, those whose open tags pointed elsewhere before (a superset of
    the ones ``PREDECESSORS`` finds anything for: tags do not change while scans are stored)."""
    mine = t.tag.alias("mine")
    return (select(mine.c.artifact_id).distinct()
            .join(t.tag, (_tg.repository_id == mine.c.repository_id) & (_tg.name == mine.c.name))
            .where(mine.c.artifact_id.in_(_ids()), mine.c.until.is_(None),
                   _tg.until.is_not(None), _tg.artifact_id != mine.c.artifact_id))


# Artifacts that the tags now on ``artifact_id`` pointed to before, latest first.
PREDECESSORS: Any = _predecessors()
MAY_HAVE_PREDECESSORS: Any = _may_have_predecessors()

# --- writing ------------------------------------------------------------------------------
INSERT_SCAN: Any = t.scan.insert()
INSERT_CONTENT: Any = t.report_content.insert()
INSERT_FINDING: Any = t.finding.insert().values(
    {c.name: (_when(c.name) if isinstance(c.type, UTCDateTime) else bindparam(c.name))
     for c in t.finding.c if c.name != "id"})
INSERT_EVENT: Any = t.finding_event.insert().values(
    {c.name: (_when(c.name) if isinstance(c.type, UTCDateTime) else bindparam(c.name))
     for c in t.finding_event.c if c.name != "id"})
INSERT_REPOSITORY: Any = t.repository.insert()
INSERT_ARTIFACT: Any = t.artifact.insert()

CONFIRM_SCAN: Any = update(t.scan).where(_s.id == bindparam("_id")).values(
    confirmations=_s.confirmations + 1, last_confirmed_at=_when("_at"),
    report_id=bindparam("_report_id"), scanner_db_updated_at=_when("_db"))

ARTIFACT_FAILED: Any = update(t.artifact).where(_a.id == bindparam("_id")).values(
    last_scan_id=bindparam("_scan"), consecutive_failures=bindparam("_failures"))

ARTIFACT_SCANNED: Any = update(t.artifact).where(_a.id == bindparam("_id")).values(
    content_id=bindparam("_content"), counting=bindparam("_counting"),
    last_scan_id=bindparam("_scan"), last_success_scan_id=bindparam("_success"),
    consecutive_failures=0)

UNCOUNT_ARTIFACTS: Any = update(t.artifact).where(_a.id.in_(_ids())).values(counting=False)

TOUCH_FINDINGS: Any = update(t.finding).where(
    _f.repository_id.in_(_ids()), _f.resolved_at.is_(None)).values(last_seen=bindparam("_now"))

_FINDING_COLUMNS = ("severity", "fix_version", "installed_versions", "last_seen", "resolved_at",
                    "resolved_reason")
UPDATE_FINDING: Any = update(t.finding).where(_f.id == bindparam("_id")).values(
    {c: _when(c) if c.endswith(("_seen", "_at")) else bindparam(c) for c in _FINDING_COLUMNS})
REOPEN_FINDING: Any = update(t.finding).where(_f.id == bindparam("_id")).values(
    {c: _when(c) if c.endswith(("_seen", "_at")) else bindparam(c)
     for c in (*_FINDING_COLUMNS, "opened_at", "ignored", "ignore_reason")})
MARK_FINDING: Any = update(t.finding).where(_f.id == bindparam("_id")).values(
    ignored=bindparam("ignored"), ignore_reason=bindparam("ignore_reason"))


# --- bulk inserts through the driver ---------------------------------------------------------
_BULK: dict[tuple[str, str, tuple[str, ...]], tuple[str, bool, Any, list[tuple[int, Any]]]] = {}


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) with one driver-level executemany.

    Core's executemany builds and type-processes a parameter dict per row, which costs more
    than SQLite's own insert of a finding row. Here SQLAlchemy compiles the INSERT for the
    dialect once; each row's values go as they are, except columns whose type converts them
    (datetimes, via ``Instant``, and booleans where the dialect wants it).
    """
    if not rows:
        return
    dialect = conn.dialect
    columns = tuple(rows[0])
    key = (dialect.name, table.name, columns)
    plan = _BULK.get(key)
    if plan is None:
        compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(columns))
        names = list(compiled.positiontup or ()) if compiled.positional else list(columns)
        assert set(names) == set(columns), f"{table.name}: insert needs {names}, got {columns}"
        converters = []
        for i, name in enumerate(names):
            kind = table.c[name].type
            kind = Instant() if isinstance(kind, UTCDateTime) else kind
            process = kind.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                converters.append((i, process))
        getter = itemgetter(*names) if len(names) > 1 else (lambda r: (r[names[0]],))
        plan = (str(compiled), compiled.positional, getter, converters)
        _BULK[key] = plan
    sql, positional, getter, converters = plan
    params: list[Any] = []
    for row in rows:
        values = list(getter(row))
        for i, process in converters:
            values[i] = process(values[i])
        params.append(tuple(values))
    if not positional:
        names = list(columns)
        params = [dict(zip(names, p, strict=True)) for p in params]
    conn.exec_driver_sql(sql, params)
