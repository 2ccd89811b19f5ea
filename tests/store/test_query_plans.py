"""The large-registry queries go through their indexes (issue 11), read from SQLite's own
EXPLAIN QUERY PLAN on a migrated database file with rows in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from daemon.store import tables as t
from daemon.store.carriers import content_finding
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, success


def _plan(conn: object, stmt: object) -> str:
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    return " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))  # type: ignore[attr-defined]


def test_alerts_since_and_carriers_use_their_indexes(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], now)
        store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0"], now), now)
        e, s, a, o = t.finding_event.c, t.scan.c, t.artifact.c, content_finding.c
        since = now - timedelta(days=7)
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(content_finding)).scalar() == 1
            assert "COVERING INDEX ix_event_at" in _plan(
                conn, select(func.min(e.id + 0)).where(e.at >= since))
            assert "INDEX ix_scan_time" in _plan(conn, select(func.min(s.id + 0)).where(
                func.coalesce(s.finished_at, s.started_at) >= since))
            carriers = _plan(conn, select(a.digest, o.version).select_from(content_finding)
                             .join(t.artifact, a.content_id == o.content_id)
                             .where(o.vulnerability.in_(["CVE-1"]), o.package.in_(["openssl"]),
                                    a.counting.is_(True)))
            assert "INDEX ix_content_finding_key" in carriers
            assert "INDEX ix_artifact_content" in carriers
    finally:
        store.close()


def test_the_plan_and_the_overview_use_their_indexes(tmp_path: Path) -> None:
    """``store/actions.py`` reads a batch of repositories' carried versions from the artifacts
    through ``ix_content_finding_content`` (no temporary index built per statement), and the
    overview counts open findings in the order of ``ix_finding_open_severity`` (no sort)."""
    from daemon.store.actions import CARRIED_VERSIONS

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], now)
        store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0"], now), now)
        f = t.finding.c
        with store.engine.connect() as conn:
            carried = _plan(conn, CARRIED_VERSIONS.params(repositories=[1]))
            assert "COVERING INDEX ix_content_finding_content" in carried, carried
            assert "AUTOMATIC" not in carried
            counts = _plan(conn, select(f.repository_id, f.severity, func.count())
                           .where(f.resolved_at.is_(None), f.ignored.is_(False))
                           .group_by(f.repository_id, f.severity))
            assert counts == "SCAN finding USING INDEX ix_finding_open_severity", counts  # in order
            resolved = _plan(conn, select(f.severity, f.opened_at, f.resolved_at).where(
                f.resolved_at.is_not(None), f.resolved_at >= now,
                f.resolved_reason != "image_removed"))  # pages.time_to_fix: the window only
            assert "COVERING INDEX ix_finding_resolved (resolved_at>?)" in resolved, resolved
    finally:
        store.close()
