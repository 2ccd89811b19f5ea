"""What every aggregate module of the store shares: the SQLite file of a URL, the caches a
``Store`` owns (``Caches``) and the registry id lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Connection, make_url

from daemon.store import tables as t
from daemon.store.content import ContentCache


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


@dataclass
class Caches:
    """What a Store remembers between transactions: decoded report contents (rows never
    change) and registry ids (a registry row is never deleted). Used from one thread only."""

    contents: ContentCache = field(default_factory=ContentCache)
    registry_ids: dict[str, int] = field(default_factory=dict)


def registry_id(conn: Connection, caches: Caches, name: str, now: datetime | None, *,
                create: bool) -> int | None:
    """The id of registry ``name``; created (first seen ``now``) with ``create``, else None
    when history does not know it."""
    found = caches.registry_ids.get(name)
    if found is not None:
        return found
    row = conn.execute(select(t.registry.c.id).where(t.registry.c.name == name)).first()
    if row is None:
        if not create:
            return None
        conn.execute(t.registry.insert().values(name=name, first_seen=now))
        row = conn.execute(select(t.registry.c.id).where(t.registry.c.name == name)).one()
    caches.registry_ids[name] = int(row[0])
    return int(row[0])
