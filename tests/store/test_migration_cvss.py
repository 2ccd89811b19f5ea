"""Migration 18 on a real version-17 SQLite file: ``content_finding`` rows get the CVSS v3
score their stored content holds, and change events gain the score columns."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from daemon.store.db import open_store
from daemon.store.migrations import LATEST
from tests.store.store_helpers import REG, artifact, at, success


def test_it_fills_the_score_of_contents_stored_before(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    scan = success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical", "CVE-2:zlib:1.2"], at(0))
    assert scan.report is not None
    scored = tuple(replace(o, cvss_v3=9.8 if o.id == "CVE-1" else None,
                           cvss_vector="CVSS:3.1/AV:N" if o.id == "CVE-1" else "")
                   for o in scan.report.occurrences)
    store = open_store(f"sqlite:///{db}")
    store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
    store.record_scan(replace(scan, report=replace(scan.report, occurrences=scored)), at(0))
    store.close()
    # The same file as version 17 left it: no score columns, schema version 17.
    raw = sqlite3.connect(db)
    raw.execute("DROP INDEX ix_content_finding_key")  # as migration 10 made it (19 widens it)
    raw.execute("CREATE INDEX ix_content_finding_key ON content_finding"
                " (vulnerability, package, content_id)")
    for table in ("content_finding", "finding_event"):
        for column in ("cvss_v3", "cvss_vector"):
            raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.execute("DROP TABLE plan_bucket")  # and without what later versions add (20)
    raw.execute("DROP TABLE plan_state")
    raw.execute("DROP INDEX ix_finding_resolved")  # (21)
    raw.execute("DROP TABLE lineage_resolved")  # (22)
    for (trigger,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                  " AND name LIKE 'carrier_%'").fetchall():  # and 23
        raw.execute(f"DROP TRIGGER {trigger}")
    raw.execute("DROP TABLE carrier_summary")
    raw.execute("DROP TABLE carrier_dirty")
    raw.execute("DROP INDEX ix_artifact_digest")  # (24)
    raw.execute("DELETE FROM schema_version WHERE version >= 18")
    raw.commit()
    raw.close()
    open_store(f"sqlite:///{db}").close()
    raw = sqlite3.connect(db)
    rows = set(raw.execute("SELECT vulnerability, cvss_v3, cvss_vector FROM content_finding"))
    version = raw.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    events = list(raw.execute("SELECT cvss_v3, cvss_vector FROM finding_event"))
    raw.close()
    # Rewritten from the blobs: the score they hold; the vector only from new contents on.
    assert rows == {("CVE-1", 9.8, ""), ("CVE-2", None, "")}
    assert version == LATEST
    assert events and all(e == (None, "") for e in events)  # recorded before: no score
