"""The ignores aggregate: Harbor's CVE allowlists as last read, which stay in force until a
later read replaces them (the configured rules live in the config, ``daemon/ignores.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from daemon.model import CveAllowlist
from daemon.store import tables as t


def save_allowlists(conn: Connection, registry: str, allowlists: Sequence[CveAllowlist],
                    now: datetime) -> None:
    """Replace ``registry``'s stored allowlists with a fresh, complete read."""
    al = t.harbor_allowlist.c
    conn.execute(delete(t.harbor_allowlist).where(al.registry_name == registry))
    rows = [{"registry_name": registry, "project": a.project,
             "cve_ids": ",".join(sorted(a.cve_ids)), "expires_at": a.expires_at,
             "read_at": now} for a in allowlists if a.registry == registry]
    if rows:
        conn.execute(t.harbor_allowlist.insert(), rows)


def load_allowlists(conn: Connection) -> tuple[CveAllowlist, ...]:
    """Every registry's allowlists as last read (``save_allowlists``)."""
    al = t.harbor_allowlist.c
    rows = conn.execute(select(al.registry_name, al.project, al.cve_ids, al.expires_at)
                        .order_by(al.registry_name, al.project)).all()
    return tuple(CveAllowlist(row.registry_name,
                              frozenset(filter(None, row.cve_ids.split(","))),
                              row.expires_at, row.project) for row in rows)
