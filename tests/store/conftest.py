"""What the store's tests share: a fresh PostgreSQL database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgkit import ADMIN_URL, NOT_SET, fresh_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database for this test, dropped afterwards (skipped without PostgreSQL)."""
    if not ADMIN_URL:
        pytest.skip(NOT_SET)
    with fresh_database() as url:
        yield url
