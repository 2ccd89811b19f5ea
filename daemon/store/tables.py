"""The history database's tables as SQLModel classes: the latest schema, for queries.

The schema itself is created and changed only by the ordered migrations in
``daemon/store/migrations/``; a test checks that the migrated database and these classes agree.

Shape (DESIGN.md "Identity", "Storage and scale"):

- ``registry`` → ``repository`` (project, name) → ``artifact`` (digest; ``parent_digest`` for an
  index's children). ``tag`` rows are intervals: which digest a tag pointed to from ``since``
  until ``until`` (NULL while it still does).
- ``report_content``: each distinct normalised report is stored once, keyed by the SHA-256 of its
  canonical form, its occurrences as one compressed canonical JSON array (always read whole;
  see ``store/content.py``). A ``scan`` row points at it; an unchanged rescan only bumps the last
  scan row's ``confirmations`` and ``last_confirmed_at``: history grows with changes, not scans.
- ``artifact.content_id`` is the report that counts for findings; ``counting`` stays true until
  the artifact has left the registry or lost its tags to a scanned successor.
- ``finding`` (repository, vulnerability, package) is one row whose open interval is
  ``opened_at`` … ``resolved_at``; ``finding_event`` rows hold every change with its reason.
- ``schedule_run``, ``outbox`` and ``notification_log`` serve the scheduler and the alerts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlmodel import Field, Index, SQLModel, UniqueConstraint


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


_NAIVE_TEXT = len("2026-01-01 00:00:00.000000")


def as_utc(value: Any) -> datetime:
    """A time column's value as the database driver returned it (``base.driver_rows``: SQLite's
    text, a naive or aware datetime elsewhere) as an aware UTC datetime, as ``UTCDateTime``
    reads it."""
    if isinstance(value, str):
        # As stored, naive UTC ("YYYY-MM-DD HH:MM:SS.ffffff"): parsed with its offset appended,
        # a sixth of the cost of ``replace`` after parsing (three times per listed finding).
        value = datetime.fromisoformat(value if len(value) > _NAIVE_TEXT else value + "+00:00")
    moment: datetime = value
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _at(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, **kw)


class RegistryTable(SQLModel, table=True):
    __tablename__ = "registry"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    first_seen: datetime = _at(nullable=False)


class RepositoryTable(SQLModel, table=True):
    __tablename__ = "repository"
    __table_args__ = (UniqueConstraint("registry_id", "project", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    registry_id: int = Field(foreign_key="registry.id")
    project: str
    name: str
    first_seen: datetime = _at(nullable=False)
    last_seen: datetime | None = _at()
    removed_at: datetime | None = _at()


class ArtifactTable(SQLModel, table=True):
    __tablename__ = "artifact"
    __table_args__ = (UniqueConstraint("repository_id", "digest"),)
    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = Field(foreign_key="repository.id")
    digest: str
    type: str = ""
    media_type: str = ""
    manifest_media_type: str = ""
    parent_digest: str | None = None
    size: int = 0
    push_time: datetime | None = _at()
    pull_time: datetime | None = _at()
    first_seen: datetime = _at(nullable=False)
    last_seen: datetime | None = _at()
    removed_at: datetime | None = _at()
    content_id: int | None = Field(default=None, foreign_key="report_content.id")
    counting: bool = False
    last_scan_id: int | None = None
    last_success_scan_id: int | None = None
    consecutive_failures: int = 0


class TagTable(SQLModel, table=True):
    __tablename__ = "tag"
    __table_args__ = (Index("ix_tag_open", "repository_id", "name", "until"),)
    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = Field(foreign_key="repository.id")
    name: str
    artifact_id: int = Field(foreign_key="artifact.id", index=True)
    digest: str
    since: datetime = _at(nullable=False)
    until: datetime | None = _at()


class ReportContentTable(SQLModel, table=True):
    __tablename__ = "report_content"
    id: int | None = Field(default=None, primary_key=True)
    content_hash: str = Field(unique=True)
    occurrence_count: int = 0
    occurrences: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = _at(nullable=False)


class ScanTable(SQLModel, table=True):
    __tablename__ = "scan"
    __table_args__ = (
        Index("ix_scan_artifact", "artifact_id", "id"),
        Index("ix_scan_report", "report_id"),  # migration 2
    )
    id: int | None = Field(default=None, primary_key=True)
    artifact_id: int = Field(foreign_key="artifact.id")
    status: str
    started_at: datetime | None = _at()
    finished_at: datetime | None = _at()
    scanner_name: str = ""
    scanner_version: str = ""
    scanner_db_updated_at: datetime | None = _at()
    report_id: str = ""
    error: str = ""
    log_excerpt: str = ""
    trigger: str = ""
    occurrence_count: int = 0
    content_hash: str = ""
    content_id: int | None = Field(default=None, foreign_key="report_content.id")
    baseline_scan_id: int | None = None
    confirmations: int = 1
    last_confirmed_at: datetime | None = _at()


class FindingTable(SQLModel, table=True):
    __tablename__ = "finding"
    __table_args__ = (
        UniqueConstraint("repository_id", "vulnerability", "package"),
        Index("ix_finding_open", "repository_id", "resolved_at"),
        Index("ix_finding_first_seen", "repository_id", "first_seen", "severity"),  # m0005
        # m0005 also adds ix_finding_order, an expression index (see the migration)
    )
    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = Field(foreign_key="repository.id")
    vulnerability: str
    package: str
    severity: int = 0
    fix_version: str = ""
    installed_versions: str = ""  # comma-separated, from the latest report carrying it
    first_seen: datetime = _at(nullable=False)
    opened_at: datetime = _at(nullable=False)
    last_seen: datetime = _at(nullable=False)
    resolved_at: datetime | None = _at()
    resolved_reason: str = ""
    ignored: bool = False
    ignore_reason: str = ""


class FindingEventTable(SQLModel, table=True):
    __tablename__ = "finding_event"
    __table_args__ = (Index("ix_event_repository", "repository_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    finding_id: int | None = Field(default=None, foreign_key="finding.id", index=True)
    repository_id: int = Field(foreign_key="repository.id")
    scan_id: int | None = Field(default=None, foreign_key="scan.id", index=True)
    kind: str
    reason: str
    at: datetime = _at(nullable=False)
    severity: int = 0
    previous_severity: int | None = None
    installed_version: str = ""
    previous_version: str = ""
    fix_version: str = ""
    digests: str = ""
    count: int = 1  # > 1 only for a first-sight summary (finding_id NULL)
    cvss_v3: float | None = None  # migration 16: the score the change was seen with
    cvss_vector: str = ""


class ScheduleRunTable(SQLModel, table=True):
    __tablename__ = "schedule_run"
    __table_args__ = (Index("ix_run_schedule", "schedule", "started_at"),)
    id: int | None = Field(default=None, primary_key=True)
    schedule: str
    started_at: datetime = _at(nullable=False)
    finished_at: datetime | None = _at()
    result: str = ""
    detail: str = ""


class OutboxTable(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "dead_at", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True)
    receiver: str
    route: str = ""
    payloads: str = "{}"  # JSON: channel form -> rendered body
    created_at: datetime = _at(nullable=False)
    attempts: int = 0
    next_attempt_at: datetime | None = _at()
    sent_at: datetime | None = _at()
    dead_at: datetime | None = _at()
    last_error: str = ""


class NotificationLogTable(SQLModel, table=True):
    """Added by migration 2: what each receiver was told about each finding, and when."""

    __tablename__ = "notification_log"
    __table_args__ = (Index("ix_notified", "receiver", "finding_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    receiver: str
    finding_id: int = Field(foreign_key="finding.id")
    kind: str
    sent_at: datetime = _at(nullable=False)
    message_id: str = ""
    value: str = ""  # migration 5: the changed value told (fix version, severity)


class AlertCursorTable(SQLModel, table=True):
    """Added by migration 3 (alerts): how far each route has read events and scans."""

    __tablename__ = "alert_cursor"
    route: str = Field(primary_key=True)
    last_event_id: int = 0
    last_scan_id: int = 0
    last_digest_at: datetime | None = _at()
    updated_at: datetime = _at(nullable=False)


class HarborAllowlistTable(SQLModel, table=True):
    """Added by migration 4: Harbor CVE allowlists as last read (project "" is the system's)."""

    __tablename__ = "harbor_allowlist"
    registry_name: str = Field(primary_key=True)
    project: str = Field(primary_key=True)
    cve_ids: str = ""
    expires_at: datetime | None = _at()
    read_at: datetime = _at(nullable=False)


class HarborProjectTable(SQLModel, table=True):
    """Added by migration 15: Harbor's numeric id of each project, as the last walk listed it."""

    __tablename__ = "harbor_project"
    registry_name: str = Field(primary_key=True)
    project: str = Field(primary_key=True)
    project_id: int
    seen_at: datetime = _at(nullable=False)


class SetAsideReportTable(SQLModel, table=True):
    """Added by migration 7: reports a run set aside (unreadable or not storable), and why."""

    __tablename__ = "set_aside_report"
    registry_name: str = Field(primary_key=True)
    project: str = Field(primary_key=True)
    repository: str = Field(primary_key=True)
    digest: str = Field(primary_key=True)
    report_id: str = ""
    reason: str = ""
    at: datetime = _at(nullable=False)
class InstanceTable(SQLModel, table=True):
    """Added by migration 8: each running scanwatch and its heartbeat."""

    __tablename__ = "instance"
    id: str = Field(primary_key=True)
    host: str
    pid: int
    version: str
    started_at: datetime = _at(nullable=False)
    last_seen: datetime = _at(nullable=False)


class LeaseTable(SQLModel, table=True):
    """Added by migration 8: who holds each unit of work, until when, under which epoch."""

    __tablename__ = "lease"
    unit: str = Field(primary_key=True)
    holder: str | None = None
    epoch: int = 0
    acquired_at: datetime | None = _at()
    expires_at: datetime | None = _at()


class CronFireTable(SQLModel, table=True):
    """Added by migration 8: a schedule's fire time, fired once per registry across instances."""

    __tablename__ = "cron_fire"
    schedule: str = Field(primary_key=True)
    registry_name: str = Field(primary_key=True)
    due_at: datetime = _at(nullable=False, primary_key=True)
    instance: str
    epoch: int
    started_at: datetime = _at(nullable=False)
    finished_at: datetime | None = _at()


class RunSummaryTable(SQLModel, table=True):
    """Added by migration 13: what a schedule run did, a JSON object (`scanwatch runs`)."""

    __tablename__ = "run_summary"
    run_id: int = Field(foreign_key="schedule_run.id", primary_key=True)
    summary: str = Field(nullable=False)


class IgnoreRuleTable(SQLModel, table=True):
    """Added by migration 12: ignore rules from `scanwatch ignore add` (globs comma-separated);
    since migration 25 an id is never given twice on SQLite either (history names rules by id)."""

    __tablename__ = "ignore_rule"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    vulnerability: str = ""
    package: str = ""
    registries: str = "*"
    projects: str = "*"
    repositories: str = "*"
    reason: str = Field(nullable=False)
    expires: date = Field(nullable=False)
    created_by: str = Field(nullable=False)
    created_at: datetime = _at(nullable=False)
class IntelFeedTable(SQLModel, table=True):
    """Added by migration 14: each intel feed's last good copy (see the migration)."""

    __tablename__ = "intel_feed"
    name: str = Field(primary_key=True)
    source: str = ""
    version: str = ""
    etag: str = ""
    last_modified: str = ""
    body: bytes | None = Field(default=None, sa_type=LargeBinary)
    fetched_at: datetime | None = _at()
    checked_at: datetime = _at(nullable=False)
    last_error: str = ""


class IntelKevTable(SQLModel, table=True):
    """Added by migration 14: the KEV catalog in force, one row per CVE."""

    __tablename__ = "intel_kev"
    cve: str = Field(primary_key=True)
    name: str = ""
    date_added: date
    due_date: date
    required_action: str = ""
    ransomware: bool = False


class IntelEpssTable(SQLModel, table=True):
    """Added by migration 14: the EPSS scores in force, one row per CVE."""

    __tablename__ = "intel_epss"
    cve: str = Field(primary_key=True)
    epss: float
    percentile: float


registry = RegistryTable.__table__  # type: ignore[attr-defined]
repository = RepositoryTable.__table__  # type: ignore[attr-defined]
artifact = ArtifactTable.__table__  # type: ignore[attr-defined]
tag = TagTable.__table__  # type: ignore[attr-defined]
report_content = ReportContentTable.__table__  # type: ignore[attr-defined]
scan = ScanTable.__table__  # type: ignore[attr-defined]
finding = FindingTable.__table__  # type: ignore[attr-defined]
finding_event = FindingEventTable.__table__  # type: ignore[attr-defined]
schedule_run = ScheduleRunTable.__table__  # type: ignore[attr-defined]
outbox = OutboxTable.__table__  # type: ignore[attr-defined]
notification_log = NotificationLogTable.__table__  # type: ignore[attr-defined]
alert_cursor = AlertCursorTable.__table__  # type: ignore[attr-defined]
harbor_allowlist = HarborAllowlistTable.__table__  # type: ignore[attr-defined]
set_aside_report = SetAsideReportTable.__table__  # type: ignore[attr-defined]
harbor_project = HarborProjectTable.__table__  # type: ignore[attr-defined]
instance = InstanceTable.__table__  # type: ignore[attr-defined]
lease = LeaseTable.__table__  # type: ignore[attr-defined]
cron_fire = CronFireTable.__table__  # type: ignore[attr-defined]
ignore_rule = IgnoreRuleTable.__table__  # type: ignore[attr-defined]
run_summary = RunSummaryTable.__table__  # type: ignore[attr-defined]
intel_feed = IntelFeedTable.__table__  # type: ignore[attr-defined]
intel_kev = IntelKevTable.__table__  # type: ignore[attr-defined]
intel_epss = IntelEpssTable.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
