"""Version 17: ``harbor_project``, Harbor's numeric id of each project a walk listed.

Harbor's UI links an artifact as ``/harbor/projects/<project_id>/repositories/…``: the id, not
the name. A walk records the ids it listed (``store/projects.py``), so that a digest, a
preview, an intel alert or the web pages, which run without a walk of their own, link
artifacts rather than the generic projects page.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 17
DESCRIPTION = "Harbor's project ids, for links into its UI"


def upgrade(conn: Connection) -> None:
    Table(
        "harbor_project", MetaData(),
        Column("registry_name", String(), primary_key=True),
        Column("project", String(), primary_key=True),
        Column("project_id", Integer(), nullable=False),
        Column("seen_at", UTCDateTime(), nullable=False),
    ).create(conn)
