"""What the rescan trickle reads of history: open known-exploited (CISA KEV) and open fixable
Critical/High findings per repository (its priority order) and the scan time it has observed
(``store/preview.mean_scan_time``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from daemon.model import Severity
from daemon.store import tables as t


def fixable_severe(conn: Connection, registry: str) -> dict[tuple[str, str], int]:
    """Open, not ignored Critical and High findings with a fix, per (project, repository)."""
    f, r, g = t.finding.c, t.repository.c, t.registry.c
    query = (select(r.project, r.name, func.count())
             .select_from(t.finding.join(t.repository, r.id == f.repository_id)
                          .join(t.registry, g.id == r.registry_id))
             .where(g.name == registry, f.resolved_at.is_(None), f.ignored.is_(False),
                    f.severity >= int(Severity.HIGH), f.fix_version != "")
             .group_by(r.project, r.name))
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(query)}


def known_exploited(conn: Connection, registry: str) -> dict[tuple[str, str], int]:
    """Open, not ignored findings whose CVE is in the KEV catalog in force, per (project,
    repository)."""
    f, r, g, k = t.finding.c, t.repository.c, t.registry.c, t.intel_kev.c
    query = (select(r.project, r.name, func.count())
             .select_from(t.finding.join(t.repository, r.id == f.repository_id)
                          .join(t.registry, g.id == r.registry_id)
                          .join(t.intel_kev, k.cve == f.vulnerability))
             .where(g.name == registry, f.resolved_at.is_(None), f.ignored.is_(False))
             .group_by(r.project, r.name))
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(query)}
