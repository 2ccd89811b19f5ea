"""The same store code on PostgreSQL (``$SCANWATCH_TEST_POSTGRES``, set by .ci/run)."""

from __future__ import annotations

import json

import pytest

from daemon.errors import DatabaseLocked
from daemon.store.db import open_store
from daemon.store.migrations import LATEST
from tests.store.store_helpers import REG, artifact, at, failure, success
from tests.store.test_findings_listing import (
    REPOSITORIES,
    listing,
    order_key,
    scanwatch,
    seed_many,
)


def test_it_migrates_and_records_history_on_postgresql(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT max(version) FROM schema_version").scalar() \
                == LATEST
        store.record_inventory(REG, [artifact("sha256:a", "latest")], at(0))
        first = store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical",
                                                       "CVE-2:zlib:1.2::High"], at(0)), at(0))
        assert [(e.reason.value, e.count) for e in first] == [("first_sight", 2)]
        assert store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical",
                                                      "CVE-2:zlib:1.2::High"], at(1)), at(1)) == []
        assert store.record_scan(failure("sha256:a", at(2)), at(2)) == []
        delta = store.record_inventory(REG, [artifact("sha256:a"),
                                             artifact("sha256:b", "latest")], at(3))
        assert store.resolve_removed(REG, delta.removed, at(3)) == []
        events = store.record_scan(success("sha256:b", ["CVE-2:zlib:1.2::High"], at(3)), at(3))
        assert [(e.kind.value, e.reason.value, e.finding.vulnerability) for e in events] == [
            ("fixed", "fixed_by_rebuild", "CVE-1")]
        (finding,) = store.open_findings()
        assert finding.key.vulnerability == "CVE-2" and finding.first_seen == at(0)
        assert store.scan_records(REG)["sha256:a"].consecutive_failures == 1
        run = store.record_run_start("nightly", at(4))
        store.record_run_finish(run, at(5), "ok")
        last = store.last_run("nightly")
        assert last is not None and last.finished_at == at(5)
        assert [e.digest for e in store.history(REG, "payments", "api", "latest")] == [
            "sha256:a", "sha256:a", "sha256:b"]
    finally:
        store.close()


def test_a_second_daemon_on_the_same_postgresql_database_is_refused(pg_url: str) -> None:
    first, second = open_store(pg_url), open_store(pg_url)
    try:
        first.acquire_daemon_lock()
        with pytest.raises(DatabaseLocked, match="in use by another scanwatch daemon"):
            second.acquire_daemon_lock()
    finally:
        first.close()
        second.close()


def test_findings_list_pages_and_summarise_the_same_on_postgresql(pg_url: str) -> None:
    seed_many(pg_url)
    full = listing(pg_url)
    assert len(full) == REPOSITORIES * 3 and full == sorted(full, key=order_key)
    assert listing(pg_url, "--limit", "7") == full[:7]
    assert listing(pg_url, "--fixable", "--severity", "critical") == [
        r for r in full if r["fixed"] and r["severity"] == "Critical"]
    proc = scanwatch("findings", "--database", pg_url, "--by", "image", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == REPOSITORIES
