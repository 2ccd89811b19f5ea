"""Reading history: scan records for selection, open findings, a target's history, runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from daemon.errors import UnknownTarget
from daemon.model import (
    ChangeEvent,
    ChangeKind,
    FindingKey,
    Reason,
    ScanRecord,
    ScanState,
    Severity,
)
from daemon.store import tables as t
from daemon.store.base import repository_ids
from daemon.store.batch import chunks
from daemon.store.findings import FindingHead, FindingQuery, FindingRow
from daemon.store.runs import RunRow

__all__ = ["FindingHead", "FindingQuery", "FindingRow", "HistoryEntry", "RunRow"]


@dataclass(frozen=True)
class HistoryEntry:
    """One scan of a target (or a change without a scan: image removed, ignore expired)."""

    at: datetime
    digest: str
    status: str  # Success / Error / Stopped, or "" for a change without a scan
    tags: tuple[str, ...] = ()
    report_id: str = ""
    scanner: str = ""
    scanner_db_updated_at: datetime | None = None
    confirmations: int = 1
    last_confirmed_at: datetime | None = None
    occurrences: int = 0
    error: str = ""
    trigger: str = ""
    changes: tuple[ChangeEvent, ...] = field(default_factory=tuple)


def scan_records(conn: Connection, registry: str, digests: Iterable[str] | None = None
                 ) -> dict[str, ScanRecord]:
    """The last scan of each listed artifact of ``registry``, keyed by digest; with
    ``digests``, of those digests alone (a run's selection reads a batch of its walk at a
    time). A digest's record is its latest scan in the registry, wherever it is listed."""
    a, r, g = t.artifact.c, t.repository.c, t.registry.c
    last, good = aliased(t.scan), aliased(t.scan)
    query = (select(a.digest, last.c.status, last.c.report_id, last.c.last_confirmed_at,
                    last.c.finished_at, good.c.last_confirmed_at.label("ok_at"),
                    good.c.scanner_db_updated_at.label("ok_db"), a.consecutive_failures,
                    a.repository_id)
             .join(last, last.c.id == a.last_scan_id)
             .outerjoin(good, good.c.id == a.last_success_scan_id)
             .where(a.removed_at.is_(None)))
    ours = select(r.id).join(t.registry, g.id == r.registry_id).where(g.name == registry)
    repositories: set[int] | None = None
    if digests is None:
        statements = [query.where(a.repository_id.in_(ours.scalar_subquery()))]
    else:
        repositories = repository_ids(conn, registry)  # (base.repository_ids: why)
        statements = [query.where(a.digest.in_(chunk)) for chunk in chunks(sorted(set(digests)))]
    out: dict[str, ScanRecord] = {}
    # Equal times one object each (a registry's 100,000 records: a success's two times are
    # one, its scanner's DB times a few): 100 B a record less.
    db_times: dict[datetime | None, datetime | None] = {}
    for statement in statements:
        for row in conn.execute(statement):
            if repositories is not None and row.repository_id not in repositories:
                continue
            finished = row.last_confirmed_at or row.finished_at
            ok_at = finished if row.ok_at == finished and finished is not None else row.ok_at
            record = ScanRecord(
                digest=row.digest, state=ScanState(row.status), report_id=row.report_id,
                finished_at=finished, last_success_at=ok_at,
                scanner_db_updated_at=db_times.setdefault(row.ok_db, row.ok_db),
                consecutive_failures=row.consecutive_failures)
            prior = out.get(row.digest)
            if prior is None or _later(record.finished_at, prior.finished_at):
                out[row.digest] = record
    return out


def known_report_ids(conn: Connection, registry: str) -> set[str]:
    """Report ids already stored for ``registry`` (collect fetches each report once)."""
    a, r, g, s = t.artifact.c, t.repository.c, t.registry.c, t.scan.c
    query = (select(s.report_id).distinct()
             .join(t.artifact, a.id == s.artifact_id)
             .join(t.repository, r.id == a.repository_id)
             .join(t.registry, g.id == r.registry_id)
             .where(g.name == registry, s.report_id != ""))
    return {row[0] for row in conn.execute(query)}

# --- findings -------------------------------------------------------------------------
def open_finding_counts(conn: Connection) -> dict[Severity, int]:
    """How many findings are open (not ignored), per severity: one GROUP BY, for metrics."""
    f = t.finding.c
    query = (select(f.severity, func.count()).where(f.resolved_at.is_(None),
                                                    f.ignored.is_(False))
             .group_by(f.severity))
    return {Severity(sev): int(n) for sev, n in conn.execute(query)}

# --- a target's history ---------------------------------------------------------------
def history(
    conn: Connection, registry: str, project: str, repository: str, tag: str | None = None
) -> list[HistoryEntry]:
    """A repository's (or one tag's) scans over time with the changes each brought.

    Raises UnknownTarget when the registry, repository or tag is not in the history.
    """
    r, g, a, s, tg, e = (t.repository.c, t.registry.c, t.artifact.c, t.scan.c, t.tag.c,
                         t.finding_event.c)
    if conn.execute(select(g.id).where(g.name == registry)).first() is None:
        raise UnknownTarget(f"unknown registry {registry!r} (not in the history)")
    repo = conn.execute(select(r.id).join(t.registry, g.id == r.registry_id).where(
        g.name == registry, r.project == project, r.name == repository)).first()
    if repo is None:
        raise UnknownTarget(f"unknown repository {registry}/{project}/{repository}")
    repo_id = repo[0]
    tag_rows = conn.execute(select(tg.name, tg.artifact_id, tg.since, tg.until)
                            .where(tg.repository_id == repo_id)).all()
    tags_of: dict[int, set[str]] = defaultdict(set)
    for row in tag_rows:
        tags_of[row.artifact_id].add(row.name)
    artifact_filter = None
    if tag is not None:
        wanted = {row.artifact_id for row in tag_rows if row.name == tag}
        if not wanted:
            raise UnknownTarget(
                f"unknown tag {registry}/{project}/{repository}:{tag}")
        artifact_filter = a.id.in_(sorted(wanted))
    query = (select(s, a.digest).join(t.artifact, a.id == s.artifact_id)
             .where(a.repository_id == repo_id).order_by(s.id))
    if artifact_filter is not None:
        query = query.where(artifact_filter)
    scans = conn.execute(query).all()
    events = conn.execute(
        select(e, t.finding.c.vulnerability, t.finding.c.package)
        .outerjoin(t.finding, t.finding.c.id == e.finding_id)
        .where(e.repository_id == repo_id).order_by(e.id)).all()
    by_scan: dict[int | None, list[ChangeEvent]] = defaultdict(list)
    scan_ids = {row.id for row in scans}
    for ev in events:
        if ev.scan_id is not None and ev.scan_id not in scan_ids:
            continue
        by_scan[ev.scan_id].append(_event(ev, registry, project, repository))
    entries = [HistoryEntry(
        at=row.finished_at or row.started_at, digest=row.digest, status=row.status,
        tags=tuple(sorted(tags_of.get(row.artifact_id, ()))), report_id=row.report_id,
        scanner=" ".join(x for x in (row.scanner_name, row.scanner_version) if x),
        scanner_db_updated_at=row.scanner_db_updated_at, confirmations=row.confirmations,
        last_confirmed_at=row.last_confirmed_at, occurrences=row.occurrence_count,
        error=row.error, trigger=row.trigger, changes=tuple(by_scan.get(row.id, ())),
    ) for row in scans]
    for change in by_scan.get(None, []):
        if tag is None or set(change.digests) & {x.digest for x in entries}:
            entries.append(HistoryEntry(at=change.at, digest=",".join(change.digests),
                                        status="", changes=(change,)))
    entries.sort(key=lambda x: x.at)
    return entries


def _event(ev: Any, registry: str, project: str, repository: str) -> ChangeEvent:
    return ChangeEvent(
        kind=ChangeKind(ev.kind), reason=Reason(ev.reason),
        finding=FindingKey(registry, project, repository, ev.vulnerability or "",
                           ev.package or ""),
        severity=Severity(ev.severity), at=ev.at, installed_version=ev.installed_version,
        fix_version=ev.fix_version,
        previous_severity=None if ev.previous_severity is None else Severity(
            ev.previous_severity),
        digests=tuple(d for d in ev.digests.split(",") if d), count=ev.count,
        cvss_v3=ev.cvss_v3, cvss_vector=ev.cvss_vector)


def _later(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a > b)
