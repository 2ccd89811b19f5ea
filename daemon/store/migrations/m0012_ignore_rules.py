"""Version 12: ``ignore_rule``, the ignore rules added with `scanwatch ignore add`.

The third source of ignores beside the configuration's ``[[ignore]]`` and Harbor's CVE
allowlists: the same fields as an ``[[ignore]]`` table (globs; "" means any), with who added it
and when. `ignore remove` deletes the row; the next reconcile brings its findings back.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 12
DESCRIPTION = "ignore rules added from the command line"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "ignore_rule", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("vulnerability", String(), nullable=False, default=""),
        Column("package", String(), nullable=False, default=""),
        Column("registries", String(), nullable=False, default="*"),  # comma-separated globs
        Column("projects", String(), nullable=False, default="*"),
        Column("repositories", String(), nullable=False, default="*"),
        Column("reason", String(), nullable=False),
        Column("expires", Date(), nullable=False),
        Column("created_by", String(), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
    ).create(conn)
