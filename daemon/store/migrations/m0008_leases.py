"""Version 8: ``instance``, ``lease`` and ``cron_fire``, for several instances on one database.

* ``instance``: each running scanwatch (host, pid, version) and its heartbeat ``last_seen``.
* ``lease``: one row per unit of work (``registry:NAME``, ``digest:ROUTE``, ``outbox``): its
  holder, when the lease expires and an ``epoch`` that grows by one on every take; a write that
  belongs to a unit commits only under the epoch it started with (``store/leases.py``).
* ``cron_fire``: which cron time of which schedule was fired for which registry, by whom, and
  when it finished: a fire time runs once across instances, and a successor's ``on_missed``
  reads the last one.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 8
DESCRIPTION = "instances, leases and cron fire times"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "instance", md,
        Column("id", String(), primary_key=True),
        Column("host", String(), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("version", String(), nullable=False),
        Column("started_at", UTCDateTime(), nullable=False),
        Column("last_seen", UTCDateTime(), nullable=False),
    )
    Table(
        "lease", md,
        Column("unit", String(), primary_key=True),
        Column("holder", String(), nullable=True),
        Column("epoch", Integer, nullable=False),
        Column("acquired_at", UTCDateTime(), nullable=True),
        Column("expires_at", UTCDateTime(), nullable=True),
    )
    Table(
        "cron_fire", md,
        Column("schedule", String(), primary_key=True),
        Column("registry_name", String(), primary_key=True),
        Column("due_at", UTCDateTime(), primary_key=True),
        Column("instance", String(), nullable=False),
        Column("epoch", Integer, nullable=False),
        Column("started_at", UTCDateTime(), nullable=False),
        Column("finished_at", UTCDateTime(), nullable=True),
    )
    md.create_all(conn)
