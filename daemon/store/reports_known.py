"""Which of a batch of Harbor report ids history already holds (an import compares a batch at a
time: an unchanged rerun keeps no set of every report id it ever stored)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from daemon.store import tables as t
from daemon.store.base import repository_ids
from daemon.store.batch import chunks


def last_scan_id(conn: Connection) -> int:
    """The newest scan row's id (0 when there is none): what "stored before now" means."""
    return int(conn.execute(select(func.max(t.scan.c.id))).scalar() or 0)


def known_among(conn: Connection, registry: str, report_ids: Iterable[str],
                upto: int | None = None) -> set[str]:
    """Of ``report_ids``, those a stored scan of ``registry`` carries (``ix_scan_report``,
    the registry's repositories told apart here: ``base.repository_ids``);
    with ``upto``, only scans up to that id (those stored before an import began, as one
    read of every known id at its start would have seen them)."""
    a, s = t.artifact.c, t.scan.c
    ours = repository_ids(conn, registry)
    found: set[str] = set()
    for chunk in chunks(sorted({i for i in report_ids if i})):
        query = (select(s.report_id, a.repository_id)
                 .join(t.artifact, a.id == s.artifact_id)
                 .where(s.report_id.in_(chunk)))
        if upto is not None:
            query = query.where(s.id <= upto)
        found.update(report for report, repository in conn.execute(query)
                     if repository in ours)
    return found
