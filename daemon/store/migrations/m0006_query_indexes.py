"""Version 6: indexes for the queries of a large registry (issue 11).

* ``ix_finding_order``: the open findings in ``scanwatch findings`` order (fixable first, most
  severe, package, vulnerability), partial on ``resolved_at IS NULL``: the first page, and
  ``--fixable --severity X``, are a range of this index instead of a sort of every finding.
* ``ix_finding_first_seen``: the first-sight summaries of an alert (and of ``alerts preview``)
  count findings per (repository, first seen, severity) from the index alone.

Plain SQL both SQLite and PostgreSQL accept (expression and partial indexes).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 6
DESCRIPTION = "indexes for the findings order and first-sight counts"

STATEMENTS = (
    "CREATE INDEX ix_finding_order ON finding ((fix_version = ''), severity DESC, package,"
    " vulnerability) WHERE resolved_at IS NULL",
    "CREATE INDEX ix_finding_first_seen ON finding (repository_id, first_seen, severity)",
)


def upgrade(conn: Connection) -> None:
    for statement in STATEMENTS:
        conn.exec_driver_sql(statement)
