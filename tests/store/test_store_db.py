"""The database itself: pragmas, migrations in place, refusing a newer schema, the daemon lock."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from daemon.errors import DatabaseLocked, SchemaTooNew, StoreError
from daemon.store import tables
from daemon.store.db import create_store_engine, open_store
from daemon.store.migrations import LATEST, current_version, migrate
from tests.store.store_helpers import (
    REG,
    artifact,
    at,
    success,
    writing_as_of_an_older_version,
)


def test_it_creates_parent_directories_and_sets_the_pragmas(tmp_path: Path) -> None:
    db = tmp_path / "state" / "deep" / "history.db"
    store = open_store(f"sqlite:///{db}")
    try:
        with store.engine.connect() as conn:
            values = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                      for p in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")}
        assert values == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1,
                          "busy_timeout": 10000}
        assert db.is_file()
    finally:
        store.close()


def test_it_enforces_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"), store.engine.begin() as conn:
            conn.execute(tables.tag.insert().values(
                repository_id=999, name="x", artifact_id=999, digest="d", since=at(0)))
    finally:
        store.close()


def test_the_migrated_schema_matches_the_table_classes(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        insp = inspect(store.engine)
        for table in tables.metadata.sorted_tables:
            got = {c["name"] for c in insp.get_columns(table.name)}
            assert got == {c.name for c in table.columns}, table.name
            got_ix = {i["name"] for i in insp.get_indexes(table.name)}
            assert {i.name for i in table.indexes} <= got_ix, table.name
    finally:
        store.close()


def test_it_migrates_a_version_1_database_in_place_keeping_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = create_store_engine(url)
    assert migrate(engine, target=1) == 1
    engine.dispose()
    # Fill the version-1 database through the code of the time: rows in every core table.
    raw = sqlite3.connect(tmp_path / "h.db")
    assert "notification_log" not in {r[0] for r in raw.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    raw.close()
    engine = create_store_engine(url)
    from daemon.store.db import Store

    v1 = Store(engine, url)
    with writing_as_of_an_older_version(engine):
        v1.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        v1.record_scan(success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.2"], at(0)),
                       at(0))
        run = v1.record_run_start("nightly", at(0))
    v1.close()

    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert current_version(conn) == LATEST >= 2
            assert inspect(conn).has_table("notification_log")
        assert [f.key.vulnerability for f in store.open_findings()] == ["CVE-1", "CVE-2"]
        assert [(f.digests, f.installed_versions) for f in store.open_findings()] == [
            (("sha256:a",), ("1.0",)), (("sha256:a",), ("1.2",))]  # carriers from the backfill
        assert store.last_run("nightly") is not None
        assert store.last_run("nightly").id == run  # type: ignore[union-attr]
        assert "sha256:a" in store.scan_records(REG)
        with store.engine.begin() as conn:  # the new table works, with its foreign key
            fid = conn.execute(text("SELECT id FROM finding LIMIT 1")).scalar()
            conn.execute(tables.notification_log.insert().values(
                receiver="slack", finding_id=fid, kind="new", sent_at=at(1), message_id="m1"))
    finally:
        store.close()


def test_it_refuses_a_database_newer_than_the_code_and_leaves_it_untouched(
    tmp_path: Path,
) -> None:
    db = tmp_path / "h.db"
    open_store(f"sqlite:///{db}").close()
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01')")
    engine.dispose()
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    with pytest.raises(SchemaTooNew, match=rf"schema version 99, newer than .* \({LATEST}\)"):
        open_store(f"sqlite:///{db}")
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_it_reports_a_database_it_cannot_open_as_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "h.db").write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store(f"sqlite:///{tmp_path / 'h.db'}")


def test_a_second_daemon_on_the_same_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    first = open_store(url)
    first.acquire_daemon_lock()
    try:
        code = (
            "import sys\n"
            "from daemon.errors import DatabaseLocked\n"
            "from daemon.store.db import open_store\n"
            f"s = open_store({url!r})\n"
            "try:\n    s.acquire_daemon_lock()\n"
            "except DatabaseLocked as e:\n    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 3, proc.stderr
        assert f"in use by another scanwatch daemon (pid {os.getpid()})" in proc.stdout
        second = open_store(url)
        with pytest.raises(DatabaseLocked):
            second.acquire_daemon_lock()
        second.close()
    finally:
        first.close()
    again = open_store(url)  # released on close: the next daemon starts
    again.acquire_daemon_lock()
    again.close()


def test_a_configured_store_gives_the_configs_ignore_rules_in_force(tmp_path):  # type: ignore[no-untyped-def]
    from datetime import date

    from daemon.config_types import Config, DaemonConfig, IgnoreConfig
    from daemon.store.db import open_configured_store

    rule = IgnoreConfig(reason="not reachable", expires=date(2099, 1, 1), vulnerability="CVE-1")
    cfg = Config(daemon=DaemonConfig(database=f"sqlite:///{tmp_path / 'h.db'}"), ignores=(rule,))
    store = open_configured_store(cfg)
    try:
        assert store.ignore_rules(cfg).rules == (rule,)
    finally:
        store.close()
    assert (tmp_path / "h.db").exists()


def test_it_counts_open_findings_per_severity_without_the_ignored(tmp_path):  # type: ignore[no-untyped-def]
    from datetime import date

    from daemon.config_types import IgnoreConfig
    from daemon.ignores import IgnoreRules
    from daemon.model import Severity
    from daemon.store.db import open_store
    from tests.store.store_helpers import REG, artifact, at, success

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    rules = IgnoreRules((IgnoreConfig("n/a", date(2099, 1, 1), vulnerability="CVE-3"),))
    store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
    store.record_scans([success("sha256:a", ["CVE-1:zlib:1.0::High", "CVE-2:curl:7::High",
                                             "CVE-3:tar:1::Critical", "CVE-4:bash:5::Low"],
                                at(0))], at(0), rules)
    assert store.open_finding_counts() == {Severity.HIGH: 2, Severity.LOW: 1}
    assert len(store.open_findings()) == 3
    store.close()
