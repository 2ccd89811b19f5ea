"""Version 9: ``alerts preview --since`` finds its first event and first scan through an index
(issue 11).

``peek`` asks the lowest id of the events (and of the scans) recorded since a time. Without an
index on the time that is a walk of the whole table; with one, ``min(id + 0)`` (the ``+ 0``
keeps the planner from walking the primary key instead) reads only the index entries since
then, the id included (a covering range).

Plain SQL both SQLite and PostgreSQL accept (an expression index for the scan's time).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 9
DESCRIPTION = "indexes for the events and scans since a time"

STATEMENTS = (
    "CREATE INDEX ix_event_at ON finding_event (at, id)",
    "CREATE INDEX ix_scan_time ON scan ((COALESCE(finished_at, started_at)), id)",
)


def upgrade(conn: Connection) -> None:
    for statement in STATEMENTS:
        conn.exec_driver_sql(statement)
