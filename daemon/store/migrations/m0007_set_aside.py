"""Version 7: ``set_aside_report``, the reports a run could not read or store (issue 13).

A report Harbor shows as complete but that scanwatch set aside (unreadable, or refused by the
database) is recorded here with its reason, so that `scanwatch status` can say so after the
run, for as long as Harbor still shows that report (``report_id``); the row goes once a later
report of the same artifact is stored. One row per artifact.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 7
DESCRIPTION = "reports set aside as unreadable, with their reason"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "set_aside_report", md,
        Column("registry_name", String(), primary_key=True),
        Column("project", String(), primary_key=True),
        Column("repository", String(), primary_key=True),
        Column("digest", String(), primary_key=True),
        Column("report_id", String(), nullable=False),
        Column("reason", Text(), nullable=False),
        Column("at", UTCDateTime(), nullable=False),
    ).create(conn)
