"""Version 4: ``harbor_allowlist``, the Harbor CVE allowlists as last read from each registry.

An allowlist read in one run stays in force until a later read replaces it, so opening the
store, a ``run --once`` or a reload (which have not read Harbor yet) change no finding's
``ignored`` mark. One row per (registry, project); project "" is the system allowlist.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 4
DESCRIPTION = "Harbor CVE allowlists as last read"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "harbor_allowlist", md,
        Column("registry_name", String(), primary_key=True),
        Column("project", String(), primary_key=True),
        Column("cve_ids", Text(), nullable=False),  # comma-separated, sorted
        Column("expires_at", UTCDateTime(), nullable=True),
        Column("read_at", UTCDateTime(), nullable=False),
    ).create(conn)
