"""Version 15: indexes for the remediation plan and the web overview at scale (issues 11, 18).

``ix_content_finding_content``: the occurrences of a report content in order. The plan
(``store/actions.py``) reads which versions the counting images of a batch of repositories
carry, from the artifacts to their contents' occurrences; without an index on ``content_id``,
SQLite built a temporary one over the whole table for each statement. Covering (vulnerability,
package, version, fix version): the table itself is never read.

``ix_finding_open_severity``: the open findings of each repository by severity, read in index
order (the overview's counts; a pass over the table and a sort before).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 15
DESCRIPTION = "indexes for the remediation plan and the overview"


def upgrade(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE INDEX ix_content_finding_content ON content_finding"
        " (content_id, vulnerability, package, version, fix_version)")
    conn.exec_driver_sql(
        "CREATE INDEX ix_finding_open_severity ON finding (repository_id, severity, ignored)"
        " WHERE resolved_at IS NULL")
