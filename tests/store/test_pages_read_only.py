"""The pages' store cannot write: SQLite opened read-only, PostgreSQL sessions read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from daemon.store.db import open_store
from daemon.store.pages import read_only_engine


def test_the_pages_engine_refuses_writes_on_sqlite_and_still_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    open_store(url).close()  # created and migrated by the daemon's own engine
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM finding").scalar_one() == 0
            with pytest.raises(DBAPIError, match="readonly|read-only|read only"):
                conn.exec_driver_sql("INSERT INTO registry (name, first_seen) "
                                     "VALUES ('x', '2026-01-01')")
    finally:
        engine.dispose()


def test_the_pages_engine_refuses_writes_on_postgresql(pg_url: str) -> None:  # noqa: F811
    url = pg_url
    open_store(url).close()
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError, match="read-only"):
            conn.exec_driver_sql("CREATE TABLE scanwatch_pages_probe (a int)")
    finally:
        engine.dispose()
