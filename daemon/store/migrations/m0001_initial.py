"""Version 1: the initial schema (frozen here; later versions change it in their own modules).

Written in SQLAlchemy Core against its own MetaData, not ``tables.py``, so that what version 1
creates never moves when the latest schema does.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Connection

from daemon.store.tables import UTCDateTime

VERSION = 1
DESCRIPTION = "initial schema"


def _at(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _text(name: str) -> Column[str]:
    return Column(name, String(), nullable=False)


def build(md: MetaData) -> None:
    Table("registry", md,
          Column("id", Integer, primary_key=True),
          Column("name", String(), nullable=False, unique=True),
          _at("first_seen", False))
    Table("repository", md,
          Column("id", Integer, primary_key=True),
          Column("registry_id", Integer, ForeignKey("registry.id"), nullable=False),
          _text("project"), _text("name"),
          _at("first_seen", False), _at("last_seen"), _at("removed_at"),
          UniqueConstraint("registry_id", "project", "name"))
    Table("report_content", md,
          Column("id", Integer, primary_key=True),
          Column("content_hash", String(), nullable=False, unique=True),
          Column("occurrence_count", Integer, nullable=False),
          Column("occurrences", LargeBinary(), nullable=False),
          _at("created_at", False))
    Table("artifact", md,
          Column("id", Integer, primary_key=True),
          Column("repository_id", Integer, ForeignKey("repository.id"), nullable=False),
          _text("digest"), _text("type"), _text("media_type"), _text("manifest_media_type"),
          Column("parent_digest", String(), nullable=True),
          Column("size", Integer, nullable=False),
          _at("push_time"), _at("pull_time"),
          _at("first_seen", False), _at("last_seen"), _at("removed_at"),
          Column("content_id", Integer, ForeignKey("report_content.id"), nullable=True),
          Column("counting", Boolean, nullable=False),
          Column("last_scan_id", Integer, nullable=True),
          Column("last_success_scan_id", Integer, nullable=True),
          Column("consecutive_failures", Integer, nullable=False),
          UniqueConstraint("repository_id", "digest"))
    Table("tag", md,
          Column("id", Integer, primary_key=True),
          Column("repository_id", Integer, ForeignKey("repository.id"), nullable=False),
          _text("name"),
          Column("artifact_id", Integer, ForeignKey("artifact.id"), nullable=False, index=True),
          _text("digest"), _at("since", False), _at("until"),
          Index("ix_tag_open", "repository_id", "name", "until"))
    Table("scan", md,
          Column("id", Integer, primary_key=True),
          Column("artifact_id", Integer, ForeignKey("artifact.id"), nullable=False),
          _text("status"), _at("started_at"), _at("finished_at"),
          _text("scanner_name"), _text("scanner_version"), _at("scanner_db_updated_at"),
          _text("report_id"), _text("error"), _text("log_excerpt"), _text("trigger"),
          Column("occurrence_count", Integer, nullable=False),
          _text("content_hash"),
          Column("content_id", Integer, ForeignKey("report_content.id"), nullable=True),
          Column("baseline_scan_id", Integer, nullable=True),
          Column("confirmations", Integer, nullable=False),
          _at("last_confirmed_at"),
          Index("ix_scan_artifact", "artifact_id", "id"))
    Table("finding", md,
          Column("id", Integer, primary_key=True),
          Column("repository_id", Integer, ForeignKey("repository.id"), nullable=False),
          _text("vulnerability"), _text("package"),
          Column("severity", Integer, nullable=False),
          _text("fix_version"), _text("installed_versions"),
          _at("first_seen", False), _at("opened_at", False), _at("last_seen", False),
          _at("resolved_at"), _text("resolved_reason"),
          Column("ignored", Boolean, nullable=False), _text("ignore_reason"),
          UniqueConstraint("repository_id", "vulnerability", "package"),
          Index("ix_finding_open", "repository_id", "resolved_at"))
    Table("finding_event", md,
          Column("id", Integer, primary_key=True),
          Column("finding_id", Integer, ForeignKey("finding.id"), nullable=True, index=True),
          Column("repository_id", Integer, ForeignKey("repository.id"), nullable=False),
          Column("scan_id", Integer, ForeignKey("scan.id"), nullable=True, index=True),
          _text("kind"), _text("reason"), _at("at", False),
          Column("severity", Integer, nullable=False),
          Column("previous_severity", Integer, nullable=True),
          _text("installed_version"), _text("previous_version"), _text("fix_version"),
          _text("digests"), Column("count", Integer, nullable=False),
          Index("ix_event_repository", "repository_id", "at"))
    Table("schedule_run", md,
          Column("id", Integer, primary_key=True),
          _text("schedule"), _at("started_at", False), _at("finished_at"),
          _text("result"), _text("detail"),
          Index("ix_run_schedule", "schedule", "started_at"))
    Table("outbox", md,
          Column("id", Integer, primary_key=True),
          Column("message_id", String(), nullable=False, unique=True),
          _text("receiver"), _text("route"), _text("payloads"), _at("created_at", False),
          Column("attempts", Integer, nullable=False),
          _at("next_attempt_at"), _at("sent_at"), _at("dead_at"), _text("last_error"),
          Index("ix_outbox_due", "sent_at", "dead_at", "next_attempt_at"))


def upgrade(conn: Connection) -> None:
    md = MetaData()
    build(md)
    md.create_all(conn)
