"""Version 11: ``image_lineage``, what the registry says of an image digest and its base.

One row per (registry, digest) of a scanned image: its manifest's layer digests and its build
history (both fixed for a digest, so fetched once), the OCI base annotations, and the base
found for it (``daemon/lineage``), which is recomputed as the registry's images change.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 11
DESCRIPTION = "image lineage: layers, build history, base image"


def table(md: MetaData) -> Table:
    return Table(
        "image_lineage", md,
        Column("registry_name", String(), primary_key=True),
        Column("digest", String(), primary_key=True),
        Column("project", String(), nullable=False),
        Column("repository", String(), nullable=False),
        Column("layers", Text(), nullable=False),  # JSON list of layer digests
        Column("steps", Text(), nullable=False),  # JSON list of [created, created_by, empty]
        Column("base_name", String(), nullable=False, default=""),
        Column("base_digest", String(), nullable=False, default=""),
        Column("method", String(), nullable=False, default=""),
        Column("found_base_digest", String(), nullable=False, default=""),
        Column("found_base", String(), nullable=False, default=""),
        # the newer base tag last announced as fixing this image's base findings
        Column("rebuild_on", String(), nullable=False, default=""),
        Column("fetched_at", UTCDateTime(), nullable=False),
    )


def upgrade(conn: Connection) -> None:
    table(MetaData()).create(conn)
