"""Version 3: ``alert_cursor``, how far each alert route has read the change events and scans.

Alert building reads the events (and failed scans) past a route's cursor, queues the outbox
messages and moves the cursor in one transaction: a crash before the commit leaves the events
for the next pass, and none is queued twice. Digest routes also keep when they last went out.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 3
DESCRIPTION = "alert route cursors"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "alert_cursor", md,
        Column("route", String(), primary_key=True),
        Column("last_event_id", Integer, nullable=False),
        Column("last_scan_id", Integer, nullable=False),
        Column("last_digest_at", UTCDateTime(), nullable=True),
        Column("updated_at", UTCDateTime(), nullable=False),
    ).create(conn)
