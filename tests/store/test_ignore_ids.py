"""An ignore rule's id is never given to another rule (migration 25): history, `findings` and
alerts name a rule by its id ("ignore #2 by alice"), so the rule added after the newest was
removed must not take its id; on SQLite (a plain INTEGER PRIMARY KEY gives max + 1) and on
PostgreSQL, on a fresh database and on a version-24 file migrated with its rules."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

from daemon.config_types import IgnoreConfig
from daemon.store.db import Store, create_store_engine, open_store
from daemon.store.migrations import migrate

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def rule(vulnerability: str) -> IgnoreConfig:
    return IgnoreConfig(reason="not reachable", expires=date(2027, 1, 31),
                        vulnerability=vulnerability)


def version_24(tmp_path: Path) -> tuple[str, Store]:
    """An SQLite file migrated to version 24 alone, and today's store code on it."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = create_store_engine(url)
    assert migrate(engine, target=24) == 24
    return url, Store(engine, url)


def test_the_newest_rules_id_is_not_given_again_after_its_removal(url: str) -> None:
    store = open_store(url)
    try:
        first = store.add_ignore(rule("CVE-1"), "alice", NOW)
        second = store.add_ignore(rule("CVE-2"), "alice", NOW)
        assert store.remove_ignore(second.id)
        third = store.add_ignore(rule("CVE-3"), "bob", NOW)
        assert third.id > second.id > first.id
        assert [(s.id, s.rule.vulnerability) for s in store.list_ignores()] == [
            (first.id, "CVE-1"), (third.id, "CVE-3")]
    finally:
        store.close()


def test_a_version_24_file_keeps_its_rules_and_stops_reusing_ids(tmp_path: Path) -> None:
    url, old = version_24(tmp_path)
    kept = old.add_ignore(rule("CVE-1"), "alice", NOW)
    newest = old.add_ignore(rule("CVE-2"), "alice", NOW)
    assert old.remove_ignore(newest.id)
    old.close()
    store = open_store(url)
    try:
        (only,) = store.list_ignores()
        assert (only.id, only.rule, only.created_by, only.created_at) == (
            kept.id, rule("CVE-1"), "alice", NOW)
        # the removed id was given before the migration, which cannot know it: from here on
        # ids only grow past every id the table has held since
        added = store.add_ignore(rule("CVE-3"), "bob", NOW)
        assert store.remove_ignore(added.id)
        again = store.add_ignore(rule("CVE-4"), "bob", NOW)
        assert again.id > added.id
    finally:
        store.close()
    raw = sqlite3.connect(tmp_path / "h.db")
    (ddl,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'ignore_rule'").fetchone()
    raw.close()
    assert "AUTOINCREMENT" in ddl


def test_an_attempt_that_failed_after_creating_its_table_is_done_again(tmp_path: Path) -> None:
    """Python's sqlite3 commits a CREATE TABLE on its own: a migration 25 that failed after it
    left ``ignore_rule_new`` behind, with the rules and version 24 rolled back."""
    url, old = version_24(tmp_path)
    kept = old.add_ignore(rule("CVE-1"), "alice", NOW)
    old.close()
    raw = sqlite3.connect(tmp_path / "h.db")
    raw.execute("CREATE TABLE ignore_rule_new (id INTEGER PRIMARY KEY AUTOINCREMENT)")
    raw.commit()
    raw.close()
    store = open_store(url)
    try:
        assert [(r.id, r.rule) for r in store.list_ignores()] == [(kept.id, rule("CVE-1"))]
    finally:
        store.close()
