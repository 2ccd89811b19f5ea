"""Builders shared by the store tests (real SQLite files under tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from daemon.model import (
    Artifact,
    ArtifactRef,
    Occurrence,
    Report,
    ScannerInfo,
    ScanResult,
    ScanState,
    Severity,
    Tag,
)

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
REG, PROJECT, REPO = "prod", "payments", "api"


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def ref(digest: str, repository: str = REPO) -> ArtifactRef:
    return ArtifactRef(REG, PROJECT, repository, digest)


def artifact(digest: str, *tags: str, repository: str = REPO) -> Artifact:
    return Artifact(ref(digest, repository), "IMAGE", tags=tuple(Tag(t) for t in tags),
                    scannable=True)


def occ(spec: str) -> Occurrence:
    """``CVE-1:openssl:1.0[:fix[:severity]]``."""
    parts = spec.split(":") + ["", ""]
    return Occurrence(parts[0], parts[1], parts[2], parts[3],
                      Severity.parse(parts[4] or "High"))


def success(digest: str, specs: list[str], when: datetime, *, repository: str = REPO,
            report_id: str = "") -> ScanResult:
    occs = tuple(sorted((occ(s) for s in specs), key=lambda o: o.key))
    return ScanResult(ref(digest, repository), ScanState.SUCCESS,
                      report_id or f"rep-{digest}-{when:%j%H%M}", "manual",
                      started_at=when, finished_at=when, scanner=ScannerInfo("Trivy", "", "0.58"),
                      scanner_db_updated_at=when, report=Report("Trivy", "0.58", when, occs))


def failure(digest: str, when: datetime, state: ScanState = ScanState.ERROR) -> ScanResult:
    return ScanResult(ref(digest), state, f"err-{digest}-{when:%j%H%M}", "manual",
                      started_at=when, finished_at=when, log_excerpt="adapter timeout")


@contextmanager
def writing_as_of_an_older_version(engine: Engine) -> Iterator[None]:
    """Today's store code on a database migrated only to an older version: it also writes
    ``content_finding`` (version 10), so a scratch copy of that table takes those rows while
    the block runs and goes after it; the migration must then fill it from the stored report
    contents. Likewise ``finding_event``'s CVSS columns (version 16) exist only while it runs."""
    from sqlalchemy import inspect

    from daemon.store.carriers import content_finding

    with engine.begin() as conn:
        content_finding.create(conn)
        added = "cvss_v3" not in {c["name"] for c in inspect(conn).get_columns("finding_event")}
        if added:
            conn.exec_driver_sql("ALTER TABLE finding_event ADD COLUMN cvss_v3 FLOAT")
            conn.exec_driver_sql("ALTER TABLE finding_event ADD COLUMN cvss_vector VARCHAR"
                                 " NOT NULL DEFAULT ''")
    try:
        yield
    finally:
        with engine.begin() as conn:
            content_finding.drop(conn)
            if added:
                conn.exec_driver_sql("ALTER TABLE finding_event DROP COLUMN cvss_v3")
                conn.exec_driver_sql("ALTER TABLE finding_event DROP COLUMN cvss_vector")
