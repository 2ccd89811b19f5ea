"""The plain, frozen values that pass between the pipeline's stages.

schedule → enumerate → select → scan queue → collect → store → diff → alerts. Each stage takes
and returns these and nothing else; no stage hands another an ORM object or an HTTP response.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

REPORT_MIME_V11 = "application/vnd.security.vulnerability.report; version=1.1"
REPORT_MIME_HARBOR_V10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"


class Severity(enum.IntEnum):
    """Harbor's severities, ordered so that ``Critical > High > … > None``."""

    NONE = 0
    UNKNOWN = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def label(self) -> str:
        """Harbor's casing: ``Critical``, ``High``, …, ``None``."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str | None) -> Severity:
        """Read any casing of a severity name; Trivy's ``NEGLIGIBLE`` is ``None``, as in Harbor.

        Anything unrecognised is ``Unknown`` (Harbor does the same when it stores a report).
        """
        if not text:
            return cls.UNKNOWN
        key = text.strip().upper()
        if key == "NEGLIGIBLE":
            return cls.NONE
        return cls.__members__.get(key, cls.UNKNOWN)

    @classmethod
    def from_name(cls, text: str) -> Severity | None:
        """Strict lookup for configuration: ``None`` when the name is not a severity."""
        return cls.__members__.get(text.strip().upper())


SEVERITY_LABELS: tuple[str, ...] = tuple(s.label for s in sorted(Severity, reverse=True))


class ScanState(enum.Enum):
    """A scan job's state as Harbor records it."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUCCESS = "Success"
    ERROR = "Error"
    STOPPED = "Stopped"

    @property
    def finished(self) -> bool:
        return self in (ScanState.SUCCESS, ScanState.ERROR, ScanState.STOPPED)


class UserStatus(enum.Enum):
    """The six statuses users see, named as Harbor's UI names them."""

    NOT_SCANNED = "Not Scanned"
    NOT_SUPPORTED = "Not Supported"
    QUEUED = "Queued"
    SCANNING = "Scanning"
    ERROR = "Error"
    COMPLETE = "Complete"


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One (vulnerability, package, installed version) inside one report: Harbor's dedupe key."""

    id: str
    package: str
    version: str
    fix_version: str = ""
    severity: Severity = Severity.UNKNOWN
    status: str = ""
    cvss_v3: float | None = None
    # The CVSS v3 vector of that score ("CVSS:3.1/AV:N/…"), "" where the report has none that
    # matches it. Like the description, never part of a content's identity (store/content.py).
    cvss_vector: str = ""
    description: str = ""
    links: tuple[str, ...] = ()
    artifact_digests: tuple[str, ...] = ()
    cwe_ids: tuple[str, ...] = ()
    # The package's ecosystem as the report names it (a PURL type: deb, apk, npm, …), or "".
    ecosystem: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.id, self.package, self.version)


@dataclass(frozen=True, slots=True)
class Report:
    """A complete, successful vulnerability report, normalised and sorted by occurrence key."""

    scanner_name: str
    scanner_version: str
    generated_at: datetime | None
    occurrences: tuple[Occurrence, ...]
    scanner_vendor: str = ""


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """An artifact's identity: (registry, project, repository, digest)."""

    registry: str
    project: str
    repository: str  # without the project prefix, e.g. "team/app"
    digest: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.project}/{self.repository}@{self.digest}"


@dataclass(frozen=True, slots=True)
class FindingKey:
    """A finding's identity, the unit of history and alerting."""

    registry: str
    project: str
    repository: str
    vulnerability: str
    package: str


@dataclass(frozen=True, slots=True)
class ScannerInfo:
    name: str
    vendor: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class ScanOverview:
    """What an artifact listing says about the artifact's last scan."""

    report_id: str
    state: ScanState
    complete_percent: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    scanner: ScannerInfo | None = None
    counts: dict[str, int] = field(default_factory=dict)  # severity label -> count
    total: int = 0
    fixable: int = 0


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    push_time: datetime | None = None
    pull_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact as the inventory walk found it."""

    ref: ArtifactRef
    type: str
    media_type: str = ""
    manifest_media_type: str = ""
    tags: tuple[Tag, ...] = ()
    push_time: datetime | None = None
    pull_time: datetime | None = None
    scannable: bool = False
    overview: ScanOverview | None = None
    children: tuple[str, ...] = ()  # child digests of an image index
    child_platforms: tuple[str, ...] = ()  # each child's "linux/arm64/v8" ("" if unnamed)
    size: int = 0
    # the OCI base annotations of its manifest (org.opencontainers.image.base.name/.digest)
    base_name: str = ""
    base_digest: str = ""

    @property
    def is_index(self) -> bool:
        return bool(self.children)


class ChangeKind(enum.Enum):
    NEW = "new"
    FIXED = "fixed"
    FIX_AVAILABLE = "fix_available"
    SEVERITY_CHANGED = "severity_changed"
    REOPENED = "reopened"
    REBUILD_AVAILABLE = "rebuild_available"  # a newer base tag lacks it (daemon/lineage)
    KNOWN_EXPLOITED = "known_exploited"  # intel: its CVE is in CISA KEV (or left it)
    EXPLOIT_LIKELY = "exploit_likely"  # intel: its EPSS score crossed the threshold


class Reason(enum.Enum):
    NEW_IMAGE = "new_image"
    ADVISORY_PUBLISHED = "advisory_published"
    FIXED_BY_REBUILD = "fixed_by_rebuild"
    ADVISORY_WITHDRAWN = "advisory_withdrawn"
    IMAGE_REMOVED = "image_removed"
    FIX_RELEASED = "fix_released"
    RESCORED = "rescored"
    REOPENED = "reopened"
    FIRST_SIGHT = "first_sight"
    IGNORE_EXPIRED = "ignore_expired"  # an ignore rule or allowlist expired: open again
    BASE_UPDATED = "base_updated"  # rebuild_available: a newer tag of the base was scanned
    KEV_ADDED = "kev_added"  # a KEV catalog version added the CVE of an open finding
    KEV_REMOVED = "kev_removed"  # …or dropped it (recorded and shown once)
    IN_KEV = "in_kev"  # a finding that arrived already listed in KEV
    EPSS_CROSSED = "epss_crossed"  # the CVE's EPSS score reached the configured threshold


@dataclass(frozen=True, slots=True)
class Change:
    """One per-artifact difference between a report and its baseline (``daemon/diff.py``)."""

    kind: ChangeKind
    reason: Reason
    occurrence: Occurrence  # the current occurrence; for FIXED, the baseline's
    previous: Occurrence | None = None  # the baseline's occurrence, where there was one
    direction: str = ""  # "up" or "down" for SEVERITY_CHANGED


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of one scan of one artifact, as collect hands it to the store.

    ``report`` is set only for a complete, successful report. An Error or Stopped scan carries
    its log excerpt and never resolves anything; a report still being written (``{}``) is never
    a ScanResult at all.
    """

    ref: ArtifactRef
    state: ScanState
    report_id: str
    trigger: str  # "schedule:<name>", "manual", "imported"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    scanner: ScannerInfo | None = None
    scanner_db_updated_at: datetime | None = None
    report: Report | None = None
    log_excerpt: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """What history knows of an artifact's scans, for selection."""

    digest: str
    state: ScanState
    report_id: str
    finished_at: datetime | None = None
    last_success_at: datetime | None = None
    scanner_db_updated_at: datetime | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A change of a finding (the unit of history and alerting), as history records it."""

    kind: ChangeKind
    reason: Reason
    finding: FindingKey
    severity: Severity
    at: datetime
    installed_version: str = ""
    fix_version: str = ""
    previous_severity: Severity | None = None
    digests: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ignored: bool = False
    cvss_v3: float | None = None  # the report's CVSS v3 score at the change, None if unscored
    cvss_vector: str = ""
    # How many findings the event stands for: > 1 only for a first-sight summary (kind NEW,
    # reason FIRST_SIGHT, empty vulnerability/package), which alerts summarise, never list.
    count: int = 1


@dataclass(frozen=True, slots=True)
class TagMove:
    """A tag that pointed to ``old_digest`` at the last walk and now points to ``new_digest``."""

    project: str
    repository: str
    tag: str
    old_digest: str
    new_digest: str


@dataclass(frozen=True, slots=True)
class InventoryDelta:
    """What a full inventory walk of one registry changed (``Store.record_inventory``).

    ``removed`` holds the artifacts that stop counting for findings: those the registry no longer
    lists (``deleted``) and those that lost their last tag with no unscanned successor
    (``untagged``). Hand ``removed`` to ``Store.resolve_removed``.
    """

    new: tuple[ArtifactRef, ...] = ()
    moved: tuple[TagMove, ...] = ()
    deleted: tuple[ArtifactRef, ...] = ()
    untagged: tuple[ArtifactRef, ...] = ()

    @property
    def new_digests(self) -> tuple[str, ...]:
        return tuple(r.digest for r in self.new)

    @property
    def removed(self) -> tuple[ArtifactRef, ...]:
        return self.deleted + self.untagged

    @property
    def removed_digests(self) -> tuple[str, ...]:
        return tuple(r.digest for r in self.removed)


@dataclass(frozen=True, slots=True)
class CveAllowlist:
    """A Harbor CVE allowlist: system-wide (``project`` "") or a project's, one expiry for all."""

    registry: str
    cve_ids: frozenset[str]
    expires_at: datetime | None = None
    project: str = ""


@dataclass(frozen=True, slots=True)
class ExploitInfo:
    """What the intel feeds say of one CVE: in CISA KEV (with its entry's facts) and its EPSS
    score and percentile (None where unscored)."""

    kev: bool = False
    kev_name: str = ""
    date_added: date | None = None
    due_date: date | None = None
    required_action: str = ""
    ransomware: bool = False
    epss: float | None = None
    epss_percentile: float | None = None

    def rank(self) -> tuple[int, float]:
        """Higher first: in KEV, then EPSS (unscored as 0)."""
        return (1 if self.kev else 0, self.epss or 0.0)

    def kev_fields(self) -> dict[str, Any] | None:
        """The KEV entry as JSON shows it (alerts, ``--by action``); None when not in KEV."""
        if not self.kev:
            return None
        return {"name": self.kev_name, "required_action": self.required_action,
                "date_added": self.date_added.isoformat() if self.date_added else None,
                "due_date": self.due_date.isoformat() if self.due_date else None,
                "ransomware": self.ransomware}


NO_EXPLOIT_INFO = ExploitInfo()
