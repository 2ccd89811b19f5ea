"""Reports set aside by a run (``set_aside_report``): recorded with their reason, forgotten once
a later report of the same artifact is stored, and read by `scanwatch status`.

Plain functions taking a connection; nothing here decides what is unreadable (scan/run.py and
scan/collect.py do).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.engine import Connection

from daemon.model import ArtifactRef
from daemon.store import tables as t


@dataclass(frozen=True, slots=True)
class SetAside:
    """A report of ``ref`` (Harbor's ``report_id``) that a run set aside at ``at``, and why."""

    ref: ArtifactRef
    report_id: str
    reason: str
    at: datetime


def mark(conn: Connection, items: Sequence[SetAside]) -> None:
    """Record each report as set aside (an artifact's latest mark replaces its earlier one)."""
    if not items:
        return
    latest = {item.ref: item for item in items}
    clear(conn, latest)
    conn.execute(t.set_aside_report.insert(), [
        {"registry_name": ref.registry, "project": ref.project, "repository": ref.repository,
         "digest": ref.digest, "report_id": item.report_id, "reason": item.reason,
         "at": item.at}
        for ref, item in latest.items()])


def clear(conn: Connection, refs: Iterable[ArtifactRef]) -> None:
    """Forget the set-aside marks of these artifacts (a report of theirs was stored)."""
    c = t.set_aside_report.c
    wanted = sorted(set(refs), key=str)
    for start in range(0, len(wanted), 200):
        chunk = wanted[start:start + 200]
        conn.execute(delete(t.set_aside_report).where(or_(*(
            and_(c.registry_name == r.registry, c.project == r.project,
                 c.repository == r.repository, c.digest == r.digest) for r in chunk))))


def of_registry(conn: Connection, registry: str) -> dict[ArtifactRef, SetAside]:
    """The artifacts of ``registry`` whose last report was set aside, with why and when."""
    c = t.set_aside_report.c
    rows = conn.execute(select(c.project, c.repository, c.digest, c.report_id, c.reason, c.at)
                        .where(c.registry_name == registry))
    found: dict[ArtifactRef, SetAside] = {}
    for project, repository, digest, report_id, reason, at in rows:
        ref = ArtifactRef(registry, project, repository, digest)
        found[ref] = SetAside(ref, report_id, reason, at)
    return found
