"""Version 21: what the pages' overview and trend chart read, kept with the plan (issue 18).

* ``plan_state.pages``: the overview's counts per registry (repositories, images, failing
  scans, scanner DB age, open findings by severity) and the findings opened and resolved per
  severity and day, as JSON, counted by the writer with the plan and under the same history
  (``store/summary.py``): on 100,000 images these reads cost 0.3 s each, on every visit.
* ``ix_finding_resolved``: the findings resolved in a window (the time-to-fix chart and the
  trends page) read from an index of the resolved ones alone, not a scan of every finding.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 21
DESCRIPTION = "the pages' overview and trend counts kept with the plan; resolved findings index"


def upgrade(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE plan_state ADD COLUMN pages TEXT")
    conn.exec_driver_sql(
        "CREATE INDEX ix_finding_resolved ON finding (resolved_at, severity, opened_at,"
        " resolved_reason) WHERE resolved_at IS NOT NULL")
