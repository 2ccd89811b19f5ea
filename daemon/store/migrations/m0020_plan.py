"""Version 20: ``plan_bucket`` and ``plan_state``, the remediation plan counted once per state of
history (``store/plan.py``), so that every filter of the web's "Fix first" page is a GROUP BY
over a small table instead of a count of every finding (issue 18).

Empty until the writer first counts it (after the daemon's next run); until then the pages
count as before.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 20
DESCRIPTION = "the remediation plan counted per state of history, for the pages"


def upgrade(conn: Connection) -> None:
    md = MetaData()
    Table(
        "plan_bucket", md,
        Column("registry_id", Integer(), nullable=False),
        Column("project", String(), nullable=False),
        Column("severity", Integer(), nullable=False),
        Column("listed", Boolean(), nullable=False),
        Column("ignored", Boolean(), nullable=False),
        Column("hidden", Boolean(), nullable=False),
        Column("package", String(), nullable=False),
        Column("version", String(), nullable=False),
        Column("vulnerability", String(), nullable=False),
        Column("findings", Integer(), nullable=False),
        Column("fix", String(), nullable=False),
        Column("worst", Integer(), nullable=False),
    ).create(conn)
    Table(
        "plan_state", md,
        Column("id", Integer(), primary_key=True, autoincrement=False),
        Column("data_version", String(), nullable=False),
        Column("rules", String(), nullable=False),
        Column("built_at", UTCDateTime(), nullable=True),
    ).create(conn)
    # Counted under no history yet: the row a saving writer locks (plan.save).
    conn.exec_driver_sql("INSERT INTO plan_state (id, data_version, rules) VALUES (1, '', '')")
    conn.exec_driver_sql("CREATE INDEX ix_plan_bucket_group ON plan_bucket (package, version)")
    conn.exec_driver_sql("CREATE INDEX ix_plan_bucket_project ON plan_bucket (project)")
