"""Version 13: ``run_summary``, what each schedule run did, for `scanwatch runs`.

One row per ``schedule_run`` that got this far: a JSON object written when the run's alerts
are queued (trigger, registries, scans by outcome, reports imported, changes, alerts queued and
each registry's error). Runs recorded before it, or cut short before, have none.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.engine import Connection

VERSION = 13
DESCRIPTION = "a summary of each schedule run"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table("schedule_run", md, Column("id", Integer, primary_key=True))
    Table(
        "run_summary", md,
        Column("run_id", Integer, ForeignKey("schedule_run.id"), primary_key=True,
               autoincrement=False),
        Column("summary", Text(), nullable=False),
    ).create(conn)
