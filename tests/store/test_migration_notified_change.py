"""Migration 5 on a real version-4 SQLite file: the log's rows get the changed value they told."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.store.db import create_store_engine, open_store
from daemon.store.migrations import migrate
from tests.store.store_helpers import (
    REG,
    artifact,
    at,
    success,
    writing_as_of_an_older_version,
)


def test_it_fills_the_value_of_rows_logged_before_from_the_finding(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = create_store_engine(url)
    assert migrate(engine, target=4) == 4
    from daemon.store.db import Store

    v4 = Store(engine, url)
    with writing_as_of_an_older_version(engine):
        v4.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        v4.record_scan(success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical", "CVE-2:zlib:1.2"],
                               at(0)), at(0))
    v4.close()
    raw = sqlite3.connect(tmp_path / "h.db")
    ids = dict(raw.execute("SELECT vulnerability, id FROM finding"))
    raw.executemany(
        "INSERT INTO notification_log (receiver, finding_id, kind, sent_at, message_id) "
        "VALUES ('mail', ?, ?, '2026-01-01 00:00:00.000000', 'm1')",
        [(ids["CVE-1"], "fix_available"), (ids["CVE-1"], "severity_up"),
         (ids["CVE-2"], "new")])
    raw.commit()
    raw.close()
    open_store(url).close()
    raw = sqlite3.connect(tmp_path / "h.db")
    got = set(raw.execute("SELECT kind, value FROM notification_log"))
    raw.close()
    assert got == {("fix_available", "1.1"), ("severity_up", "Critical"), ("new", "")}
