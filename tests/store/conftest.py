"""What the store's tests share: a fresh PostgreSQL database per test, and a test run on
SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgkit import ADMIN_URL, NOT_SET, fresh_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database for this test, dropped afterwards (skipped without PostgreSQL)."""
    if not ADMIN_URL:
        pytest.skip(NOT_SET)
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each: an SQLite file, then PostgreSQL's (skipped without it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'h.db'}"
    else:
        yield request.getfixturevalue("pg_url")
