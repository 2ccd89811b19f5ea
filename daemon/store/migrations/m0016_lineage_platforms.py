"""Version 16: ``image_lineage`` learns image indexes and refused pulls.

``platform`` (``linux/arm64/v8``) and ``index_digest`` say which platform of which image index a
row is (an index's children are the images whose lineage is traced, each on its base's child of
the same platform); ``denied`` names the project whose pull token opened nothing for this
digest's manifest ("" when it was read), so that the digest is not asked for again every run.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.engine import Connection

from daemon.store.migrations import m0011_lineage

VERSION = 16
DESCRIPTION = "image lineage: index children's platforms, refused pulls"
ADDED = ("platform", "index_digest", "denied")


def table(md: MetaData) -> Table:
    """``image_lineage`` as it is from this version on."""
    found = m0011_lineage.table(md)
    for name in ADDED:
        found.append_column(Column(name, String(), nullable=False, default=""))
    return found


def upgrade(conn: Connection) -> None:
    for name in ADDED:
        conn.execute(text(f"ALTER TABLE image_lineage ADD COLUMN {name} VARCHAR NOT NULL "
                          "DEFAULT ''"))
