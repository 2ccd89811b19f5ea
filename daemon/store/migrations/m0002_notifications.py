"""Version 2: the notification log (what each receiver was told about each finding) and an
index on ``scan.report_id`` (collect asks for known report ids at every cycle)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 2
DESCRIPTION = "notification log; scan.report_id index"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table("finding", md, Column("id", Integer, primary_key=True))  # for the foreign key only
    log = Table(
        "notification_log", md,
        Column("id", Integer, primary_key=True),
        Column("receiver", String(), nullable=False),
        Column("finding_id", Integer, ForeignKey("finding.id"), nullable=False),
        Column("kind", String(), nullable=False),
        Column("sent_at", UTCDateTime(), nullable=False),
        Column("message_id", String(), nullable=False),
        Index("ix_notified", "receiver", "finding_id", "kind"),
    )
    log.create(conn)
    scan = Table("scan", md, Column("id", Integer, primary_key=True), Column("report_id", String()))
    Index("ix_scan_report", scan.c.report_id).create(conn)
