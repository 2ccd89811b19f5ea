"""A fresh PostgreSQL database per test or benchmark (``$SCANWATCH_TEST_POSTGRES``, set by
.ci/run): created in the server the URL names, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("SCANWATCH_TEST_POSTGRES", "")
NOT_SET = "SCANWATCH_TEST_POSTGRES is not set (an SQLAlchemy URL; .ci/run sets it)"


@contextmanager
def fresh_database(prefix: str = "scanwatch_test") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
