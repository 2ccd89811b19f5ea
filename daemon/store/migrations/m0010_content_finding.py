"""Version 10: ``content_finding``, each stored report content's occurrences one row each, so
the images carrying a finding are a join instead of a decode of every report (issue 11).

Filled for every content already stored (a batch of contents at a time); written with each
new content after. ``ix_content_finding_key`` finds the contents with a (vulnerability,
package); ``ix_artifact_content`` the artifacts with a content. A tag's artifact is looked up
by ``ix_tag_artifact``.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from daemon.store import carriers

VERSION = 10
DESCRIPTION = "report contents' occurrences as rows (the images that carry a finding)"


def upgrade(conn: Connection) -> None:
    carriers.content_finding.create(conn)
    carriers.backfill(conn)
    for statement in (
        "CREATE INDEX ix_content_finding_key ON content_finding"
        " (vulnerability, package, content_id)",
        "CREATE INDEX ix_artifact_content ON artifact (content_id, counting, repository_id)",
        "CREATE INDEX ix_tag_artifact ON tag (artifact_id, until)",
    ):
        conn.exec_driver_sql(statement)
