"""Harbor's project ids as the last walk listed them (``harbor_project``, migration 15).

Plain functions over a connection. A walk replaces the ids of the projects it listed (a project
deleted and created again under the same name gets a new id in Harbor); projects it did not
list keep their last id, so a walk of one project (a webhook's) forgets nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection

from daemon.store import tables as t


def save(conn: Connection, registry: str, ids: Mapping[str, int], now: datetime) -> None:
    """Record ``ids`` (project name → Harbor's project_id) as listed by a walk of ``registry``;
    ids that are not positive (a project listed without one) are not recorded."""
    wanted = {name: pid for name, pid in ids.items() if pid > 0}
    if not wanted:
        return
    c = t.harbor_project.c
    names = sorted(wanted)
    for start in range(0, len(names), 500):
        conn.execute(delete(t.harbor_project).where(and_(
            c.registry_name == registry, c.project.in_(names[start:start + 500]))))
    conn.execute(t.harbor_project.insert(), [
        {"registry_name": registry, "project": name, "project_id": wanted[name], "seen_at": now}
        for name in names])


def load(conn: Connection) -> dict[tuple[str, str], int]:
    """(registry, project) → Harbor's project id, for every project a walk has listed."""
    c = t.harbor_project.c
    return {(row.registry_name, row.project): int(row.project_id)
            for row in conn.execute(select(c.registry_name, c.project, c.project_id))}
