"""Version 14: ``intel_feed``, the last good copy of each threat-intelligence feed (KEV, EPSS).

One row per feed: the body as fetched (gzip-compressed), its version (``catalogVersion``, the
EPSS ``score_date``), the validators a conditional request sends back (``ETag``,
``Last-Modified``), when it was last fetched good and last tried, and the last error. A failed
fetch only touches ``checked_at`` and ``last_error``: the good copy stays in force.

``intel_kev`` and ``intel_epss`` hold the copy in force as rows, for lookups by CVE (alerts,
``findings``): replaced whole, in the transaction that keeps a new copy.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Float, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 14
DESCRIPTION = "threat-intelligence feeds (KEV, EPSS), last good copy"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "intel_feed", md,
        Column("name", String(), primary_key=True),
        Column("source", Text(), nullable=False),
        Column("version", String(), nullable=False),
        Column("etag", Text(), nullable=False),
        Column("last_modified", Text(), nullable=False),
        Column("body", LargeBinary(), nullable=True),
        Column("fetched_at", UTCDateTime(), nullable=True),
        Column("checked_at", UTCDateTime(), nullable=False),
        Column("last_error", Text(), nullable=False),
    ).create(conn)
    Table(
        "intel_kev", md,
        Column("cve", String(), primary_key=True),
        Column("name", Text(), nullable=False),
        Column("date_added", Date(), nullable=False),
        Column("due_date", Date(), nullable=False),
        Column("required_action", Text(), nullable=False),
        Column("ransomware", Boolean(), nullable=False),
    ).create(conn)
    Table(
        "intel_epss", md,
        Column("cve", String(), primary_key=True),
        Column("epss", Float(), nullable=False),
        Column("percentile", Float(), nullable=False),
    ).create(conn)
