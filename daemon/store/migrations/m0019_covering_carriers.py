"""Version 19: the carriers of a finding read from indexes alone.

``findings`` reads, for each open finding, the occurrences of its (vulnerability, package) in
the stored contents and the counting images that hold those contents (``carriers.py``). Both
indexes it searches now hold every column that read returns, so neither table is visited:

* ``ix_content_finding_key`` gains the occurrence's version, fix version, ecosystem and CVSS;
* ``ix_artifact_content`` gains the image's digest.

On the 10,000-artifact benchmark database a carrier row cost 5.0 µs with the table lookups and
2.0 µs without (``bench/scale.py``).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

VERSION = 19
DESCRIPTION = "covering indexes for the carriers of findings"


def upgrade(conn: Connection) -> None:
    for statement in (
        "DROP INDEX ix_content_finding_key",
        "CREATE INDEX ix_content_finding_key ON content_finding (vulnerability, package,"
        " content_id, version, fix_version, ecosystem, cvss_v3, cvss_vector)",
        "DROP INDEX ix_artifact_content",
        "CREATE INDEX ix_artifact_content ON artifact (content_id, counting, repository_id,"
        " digest)",
    ):
        conn.exec_driver_sql(statement)
