"""The ignore rules added from the command line (``ignore_rule``): add, list, remove.

Plain functions over a Connection; ``Store`` exposes them (``add_ignore`` …) and folds the
stored rules into ``ignore_rules`` with the configuration's and Harbor's allowlists.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from daemon.config_types import IgnoreConfig
from daemon.ignores import StoredIgnore
from daemon.store import tables as t


def _globs(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split(",") if p) or ("*",)


def add(conn: Connection, rule: IgnoreConfig, by: str, now: datetime) -> StoredIgnore:
    row = {"vulnerability": rule.vulnerability, "package": rule.package,
           "registries": ",".join(rule.registries), "projects": ",".join(rule.projects),
           "repositories": ",".join(rule.repositories), "reason": rule.reason,
           "expires": rule.expires, "created_by": by, "created_at": now}
    key = conn.execute(t.ignore_rule.insert().values(**row)).inserted_primary_key
    assert key is not None
    return StoredIgnore(int(key[0]), rule, by, now)


def every(conn: Connection) -> tuple[StoredIgnore, ...]:
    c = t.ignore_rule.c
    return tuple(
        StoredIgnore(r.id, IgnoreConfig(
            reason=r.reason, expires=r.expires, vulnerability=r.vulnerability,
            package=r.package, registries=_globs(r.registries), projects=_globs(r.projects),
            repositories=_globs(r.repositories)), r.created_by, r.created_at)
        for r in conn.execute(select(t.ignore_rule).order_by(c.id)))


def remove(conn: Connection, rule_id: int) -> bool:
    """Delete the rule; False when there is none with that id."""
    c = t.ignore_rule.c
    return bool(conn.execute(delete(t.ignore_rule).where(c.id == rule_id)).rowcount)
