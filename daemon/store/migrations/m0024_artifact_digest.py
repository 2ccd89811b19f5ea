"""Version 24: ``ix_artifact_digest``, the artifacts of a digest wherever they are.

A run selects its scans a batch of the walk at a time, reading the last scan of that batch's
digests alone (``queries.scan_records``), not every artifact's record at once: a registry of
100,000 images held 40 MB of them through the whole run. A digest's last scan is the latest
of every artifact holding it in the registry (a digest pushed to two projects is one image),
so the batch's read looks the digest up across repositories: this index.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 24
DESCRIPTION = "the artifacts of a digest, across repositories"


def upgrade(conn: Connection) -> None:
    conn.exec_driver_sql("CREATE INDEX ix_artifact_digest ON artifact (digest)")
