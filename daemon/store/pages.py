"""What the web pages read (``daemon/web/``): small aggregate queries over a read-only engine.

Every function takes a Connection and returns plain values; each is a GROUP BY, an indexed
lookup or a bounded list (``limit``), never a load of every finding. Findings in output order
and their carriers come from ``store/findings.py``, as ``scanwatch findings`` reads them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, create_engine, event, func, select
from sqlalchemy.engine import Connection, Engine, make_url

from daemon.model import Severity
from daemon.store import plan
from daemon.store import summary as page_summary
from daemon.store import tables as t
from daemon.store.base import sqlite_path
from daemon.store.plan import data_version as data_version  # what pages key their cache by
from daemon.store.summary import RegistryOverview as RegistryOverview
from daemon.store.summary import Summary

if TYPE_CHECKING:
    from daemon.store.db import Store


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite opened ``mode=ro`` (and ``query_only``), PostgreSQL
    sessions ``default_transaction_read_only``. The daemon's own engine keeps writing."""
    path = sqlite_path(url)
    if path is not None:
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")

        @event.listens_for(engine, "connect")
        def _ro(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, connect_args={
            "options": "-c default_transaction_read_only=on"})
    return create_engine(parsed)


def summary(conn: Connection) -> Summary:
    """The overview's and the chart's counts of the history now: as the writer kept them
    with the plan (``plan.summary``), else counted here (``summary.count``)."""
    return plan.summary(conn) or page_summary.count(conn)


def registries(conn: Connection) -> list[RegistryOverview]:
    """Each registry's counts for the overview (``summary.registries``)."""
    return summary(conn).registries


def last_runs(conn: Connection) -> dict[str, tuple[datetime, datetime | None, str, str]]:
    """schedule → (started, finished, result, detail) of its latest run."""
    c = t.schedule_run.c
    latest = (select(c.schedule, func.max(c.id).label("id")).group_by(c.schedule).subquery())
    rows = conn.execute(select(c.schedule, c.started_at, c.finished_at, c.result, c.detail)
                        .join(latest, latest.c.id == c.id))
    return {row.schedule: (row.started_at, row.finished_at, row.result, row.detail)
            for row in rows}


def outbox_health(conn: Connection) -> dict[str, Any]:
    o = t.outbox.c
    row = conn.execute(select(
        func.count().filter(and_(o.sent_at.is_(None), o.dead_at.is_(None))),
        func.count().filter(o.dead_at.is_not(None)),
        func.min(o.created_at).filter(and_(o.sent_at.is_(None), o.dead_at.is_(None))),
        func.max(o.sent_at))).one()
    return {"pending": int(row[0]), "dead": int(row[1]), "oldest_pending": row[2],
            "last_sent": row[3]}


@dataclass(frozen=True)
class ImageRow:
    digest: str
    tags: tuple[str, ...]
    push_time: datetime | None
    removed_at: datetime | None
    last_status: str
    last_scan_at: datetime | None
    open_findings: int


def repository_id(conn: Connection, registry: str, project: str, repository: str) -> int | None:
    r, g = t.repository.c, t.registry.c
    row = conn.execute(select(r.id).join(t.registry, g.id == r.registry_id).where(
        g.name == registry, r.project == project, r.name == repository)).first()
    return None if row is None else int(row[0])


def images(conn: Connection, repo_id: int, limit: int = 200) -> list[ImageRow]:
    """A repository's images, present ones first, newest push first, with their tags now."""
    a, s, tg = t.artifact.c, t.scan.c, t.tag.c
    rows = conn.execute(select(a.id, a.digest, a.push_time, a.removed_at, s.status,
                               s.finished_at)
                        .outerjoin(t.scan, s.id == a.last_scan_id)
                        .where(a.repository_id == repo_id)
                        .order_by(a.removed_at.is_not(None), a.push_time.desc(), a.id.desc())
                        .limit(limit)).all()
    tags: dict[int, list[str]] = defaultdict(list)
    for art_id, name in conn.execute(select(tg.artifact_id, tg.name).where(
            tg.repository_id == repo_id, tg.until.is_(None)).order_by(tg.name)):
        tags[art_id].append(name)
    return [ImageRow(row.digest, tuple(tags.get(row.id, ())), row.push_time, row.removed_at,
                     row.status or "", row.finished_at, 0) for row in rows]


@dataclass(frozen=True)
class FindingDetail:
    id: int
    severity: Severity
    fix_version: str
    installed_versions: str
    first_seen: datetime
    opened_at: datetime
    last_seen: datetime
    resolved_at: datetime | None
    resolved_reason: str
    ignored: bool
    ignore_reason: str


@dataclass(frozen=True)
class EventRow:
    at: datetime
    kind: str
    reason: str
    severity: Severity
    previous_severity: Severity | None
    installed_version: str
    previous_version: str
    fix_version: str
    digests: tuple[str, ...]


def finding(conn: Connection, repo_id: int, vulnerability: str, package: str
            ) -> tuple[FindingDetail, list[EventRow]] | None:
    """One finding (open or resolved) of a repository and its change events, oldest first."""
    f, e = t.finding.c, t.finding_event.c
    row = conn.execute(select(f.id, f.severity, f.fix_version, f.installed_versions,
                              f.first_seen, f.opened_at, f.last_seen, f.resolved_at,
                              f.resolved_reason, f.ignored, f.ignore_reason).where(
        f.repository_id == repo_id, f.vulnerability == vulnerability,
        f.package == package)).first()
    if row is None:
        return None
    detail = FindingDetail(int(row.id), Severity(row.severity), *row[2:])
    events = [EventRow(ev.at, ev.kind, ev.reason, Severity(ev.severity),
                       None if ev.previous_severity is None else Severity(ev.previous_severity),
                       ev.installed_version, ev.previous_version, ev.fix_version,
                       tuple(d for d in ev.digests.split(",") if d))
              for ev in conn.execute(select(e.at, e.kind, e.reason, e.severity,
                                            e.previous_severity, e.installed_version,
                                            e.previous_version, e.fix_version, e.digests)
                                     .where(e.finding_id == detail.id).order_by(e.id))]
    return detail, events


def open_by_day(conn: Connection, days: list[date]) -> dict[Severity, list[int]]:
    """Open (not ignored) findings per severity at the end of each of ``days`` (UTC): how many
    opened by then less how many resolved by then (``summary.days``)."""
    counted = summary(conn).days
    marks = [d.isoformat() for d in days]
    out: dict[Severity, list[int]] = {}
    for sev in Severity:
        per = sorted(counted.get(sev, {}).items())
        out[sev] = [sum(o - r for on, (o, r) in per if on <= mark) for mark in marks]
    return out


def time_to_fix(conn: Connection, since: datetime) -> dict[Severity, tuple[timedelta, int]]:
    """Per severity: the median time from opened to resolved of findings resolved since
    ``since``, and how many. Streamed: only the durations of one severity are held."""
    f = t.finding.c
    spans: dict[Severity, list[timedelta]] = defaultdict(list)
    rows = conn.execute(  # the option on the statement: the connection's would outlast it
        select(f.severity, f.opened_at, f.resolved_at).where(
            f.resolved_at.is_not(None), f.resolved_at >= since,
            f.resolved_reason != "image_removed").execution_options(yield_per=5000))
    for sev, opened, resolved in rows:
        spans[Severity(sev)].append(resolved - opened)
    return {sev: (sorted(v)[len(v) // 2], len(v)) for sev, v in spans.items() if v}


def read_only_store(url: str) -> Store:
    """A ``Store`` over ``read_only_engine(url)``: its query methods, none of its writes."""
    from daemon.store.db import Store

    return Store(read_only_engine(url), url)
