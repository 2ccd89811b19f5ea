"""Version 22: ``lineage_resolved``, a fingerprint of what each registry's lineage was last
resolved from.

Resolving a registry's lineage reads every image's facts (layers, build steps, tags) and the
reports of its bases: at 100,000 images that is most of an unchanged rerun's memory. A run
compares the fingerprint of those inputs (``store/lineage.py``'s ``inputs``, read row by row)
with this one, and resolves again only when they differ.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 22
DESCRIPTION = "a fingerprint of what each registry's lineage was resolved from"


def table(md: MetaData) -> Table:
    return Table(
        "lineage_resolved", md,
        Column("registry_name", String(), primary_key=True),
        Column("inputs", String(), nullable=False),
        Column("resolved_at", UTCDateTime(), nullable=False),
    )


def upgrade(conn: Connection) -> None:
    table(MetaData()).create(conn)
