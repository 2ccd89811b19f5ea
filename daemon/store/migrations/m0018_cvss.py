"""Version 18: the CVSS v3 score and vector of each occurrence and of each change event.

``content_finding`` gains ``cvss_v3`` and ``cvss_vector``: ``findings`` shows the score of the
images that carry a finding now. Its rows are written again from the stored contents, whose
blobs hold the score (``content.py``) but not the vector: a vector is known from the next
content stored. ``finding_event`` gains the same two columns: the score a change was seen
with, which alerts print beside the severity (events recorded before have none).

A database created at version 10 or later by this code already has the content columns
(``carriers.content_finding`` is the latest shape): they are added only where missing.
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from daemon.store import carriers

VERSION = 18
DESCRIPTION = "CVSS v3 score and vector of occurrences and change events"


def upgrade(conn: Connection) -> None:
    have = {c["name"] for c in inspect(conn).get_columns("content_finding")}
    if "cvss_v3" not in have:
        conn.exec_driver_sql("ALTER TABLE content_finding ADD COLUMN cvss_v3 FLOAT")
        conn.exec_driver_sql(
            "ALTER TABLE content_finding ADD COLUMN cvss_vector VARCHAR NOT NULL DEFAULT ''")
        conn.execute(carriers.content_finding.delete())
        carriers.backfill(conn)
    conn.exec_driver_sql("ALTER TABLE finding_event ADD COLUMN cvss_v3 FLOAT")
    conn.exec_driver_sql(
        "ALTER TABLE finding_event ADD COLUMN cvss_vector VARCHAR NOT NULL DEFAULT ''")
