"""The rescan trickle's coverage as the last runs recorded it, read from a database that may not
exist yet, without writing (the doctor, config check): ``runs.latest_coverage`` over a
read-only engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from daemon.store.base import sqlite_path
from daemon.store.pages import read_only_engine
from daemon.store.runs import latest_coverage


def stored_coverage(url: str, registries: list[str]) -> dict[str, tuple[datetime, dict[str, Any]]]:
    """``latest_coverage`` from the database at ``url``, opened read-only; empty where there
    is no database yet or it cannot be read (the doctor and config check say the rest)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return {}
    engine = read_only_engine(url)
    try:
        with engine.connect() as conn:
            return latest_coverage(conn, registries)
    except (SQLAlchemyError, ValueError):
        return {}
    finally:
        engine.dispose()
