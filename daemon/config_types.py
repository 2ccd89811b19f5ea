"""The configuration as typed, frozen values: what ``daemon/config.py`` loads and validates.

Every stage reads its settings from these and never from raw TOML. Defaults here are the
documented defaults of ``config.example.toml``; only what cannot have a default is required.
Secrets are resolved at load time into ``Secret`` values whose ``repr``/``str`` never show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from daemon.model import Severity

# db_updated is in by default: a scanner DB update is where most new CVEs come from, and an
# unchanged image is otherwise never rescanned to show them.
DEFAULT_SELECT = ("changed", "unscanned", "failed", "db_updated")
ALL_LANES = ("changed", "unscanned", "failed", "db_updated", "stale")
EVENTS = (
    "new",
    "fix_available",
    "fixed",
    "severity_up",
    "severity_down",
    "reopened",
    "sla_overdue",
    "scan_failed",
    "scanner_unavailable",
    "rebuild_available",
    "known_exploited",
    "exploit_likely",
)
# A finding rescored upwards (Medium → Critical) needs attention as much as a new one.
DEFAULT_EVENTS = ("new", "fix_available", "severity_up", "reopened", "sla_overdue", "scan_failed")


class Secret:
    """A resolved secret. Printing, logging or ``repr`` shows ``***``; ``.reveal()`` gives it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str | None, source: str) -> None:
        self._value = value
        self.source = source  # "env:NAME", "file:/path" or "literal": safe to show

    def reveal(self) -> str:
        return self._value or ""

    @property
    def present(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.source)


@dataclass(frozen=True)
class DaemonConfig:
    database: str = ""  # an SQLAlchemy URL; "" means the default, see config.default_database()
    listen: str = ""  # "127.0.0.1:9468" to serve /metrics, /healthz, /readyz; "" is off
    stop_timeout: timedelta = timedelta(seconds=30)
    max_scans_in_flight: int = 10  # a global cap across registries
    run_timeout: timedelta = timedelta(hours=6)
    outbox_drain_timeout: timedelta = timedelta(seconds=60)
    # PostgreSQL, several instances: a lease not renewed for this long is taken over (issue 19)
    lease_ttl: timedelta = timedelta(seconds=30)
    # scanwatch's own pages (daemon/web/), for "Details" links in alerts; "" names commands
    public_url: str = ""
    web_users_file: str = ""  # "user:argon2-hash" lines; required when listen is not loopback
    advisory_url: str = ""  # a template with {id}; "" is NVD's page (alerts/links.py)


@dataclass(frozen=True)
class RegistryConfig:
    name: str
    url: str  # https://harbor.example.com, no trailing slash
    username: str
    password: Secret
    projects: tuple[str, ...] = ("*",)
    exclude_projects: tuple[str, ...] = ()
    # project/repository globs where base images live (lineage); () = every repository
    base_images: tuple[str, ...] = ()
    # lineage reads each scanned image's manifest once through /v2/; Harbor records that GET as
    # a pull (pull time, pull count, audit log). False: build history and annotations only.
    read_manifests: bool = True
    repositories: tuple[str, ...] = ("*",)
    exclude_repositories: tuple[str, ...] = ()
    requests_per_second: float = 5.0
    burst: int = 5
    max_concurrent_requests: int = 4
    max_scans_in_flight: int = 2
    timeout: timedelta = timedelta(seconds=30)
    max_retries: int = 5
    verify_tls: bool = True
    ca_bundle: str = ""
    use_harbor_allowlist: bool = False
    # Bodies larger than these are refused: a page or an object is small, a report may not be.
    max_response_size: int = 4 * 1024**2
    max_report_size: int = 32 * 1024**2
    max_removed_share: float = 0.5  # a walk removing more of the artifacts records nothing
    # The Authorization header Harbor's webhook policy sends to /hooks/harbor/{name}; None: off.
    webhook_secret: Secret | None = None


@dataclass(frozen=True)
class ScheduleConfig:
    name: str
    cron: str
    registries: tuple[str, ...]
    timezone: str = "UTC"
    select: tuple[str, ...] = DEFAULT_SELECT
    stale_after: timedelta = timedelta(days=7)
    failed_backoff: timedelta = timedelta(hours=1)  # doubles per consecutive failure
    max_scans: int | None = None  # None: the trickle's budget (daemon/scan/trickle.py)
    jitter: timedelta = timedelta(0)
    on_missed: str = "run_once"  # or "skip"
    tags: tuple[str, ...] = ()  # tag globs; () means every artifact
    only_pulled_within: timedelta | None = None
    types: tuple[str, ...] = ("IMAGE",)


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    urls: tuple[Secret, ...]  # apprise URLs; they often carry tokens, so each is a Secret
    max_age: timedelta = timedelta(days=1)
    format: str = ""  # "", "slack", "email", "json": "" means from the URL's scheme


@dataclass(frozen=True)
class RouteConfig:
    receivers: tuple[str, ...]
    name: str = ""
    registries: tuple[str, ...] = ("*",)
    projects: tuple[str, ...] = ("*",)
    repositories: tuple[str, ...] = ("*",)
    min_severity: Severity = Severity.HIGH
    events: tuple[str, ...] = DEFAULT_EVENTS
    group: str = "immediate"  # or "digest"
    digest_cron: str = "0 8 * * 1-5"
    digest_timezone: str = "UTC"
    escalate_to: tuple[str, ...] = ()
    continue_: bool = False  # `continue = true` in TOML
    repeat_open_every: timedelta | None = None
    heartbeat: bool = False
    kev: bool = False  # only findings whose CVE is in CISA KEV
    min_epss: float | None = None  # only findings whose CVE's EPSS score reaches this


@dataclass(frozen=True)
class IgnoreConfig:
    reason: str
    expires: date
    vulnerability: str = ""
    package: str = ""
    registries: tuple[str, ...] = ("*",)
    projects: tuple[str, ...] = ("*",)
    repositories: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class SlaConfig:
    deadlines: dict[Severity, timedelta] = field(default_factory=dict)
    due_soon: timedelta = timedelta(days=3)
    kev_due_date: bool = False  # a finding in CISA KEV is due by the catalog's dueDate too


KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
EPSS_URL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
FEED_KINDS = ("kev", "epss")


@dataclass(frozen=True)
class FeedConfig:
    """One ``[[feed]]``: where a threat-intelligence feed comes from and how often."""

    name: str  # "kev" or "epss": which feed it is
    url: str = ""  # an http(s) URL, or a local file path
    cron: str = ""  # default: KEV hourly, EPSS daily
    timezone: str = "UTC"
    timeout: timedelta = timedelta(seconds=30)
    max_retries: int = 3
    max_size: int = 128 * 1024 * 1024
    stale_after: timedelta = timedelta(days=3)
    epss_threshold: float = 0.1  # exploit_likely when a score reaches it…
    epss_percentile: float | None = None  # …or, when set, this percentile instead

    @property
    def schedule(self) -> str:
        return self.cron or ("17 * * * *" if self.name == "kev" else "40 6 * * *")


@dataclass(frozen=True)
class VexConfig:
    """One ``[[vex]]``: OpenVEX documents from a file, a directory of ``*.json`` or a URL."""

    name: str
    path: str = ""
    url: str = ""


@dataclass(frozen=True)
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    registries: tuple[RegistryConfig, ...] = ()
    schedules: tuple[ScheduleConfig, ...] = ()
    receivers: tuple[ReceiverConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    ignores: tuple[IgnoreConfig, ...] = ()
    sla: SlaConfig = field(default_factory=SlaConfig)
    feeds: tuple[FeedConfig, ...] = ()
    vex: tuple[VexConfig, ...] = ()
    source: str = ""  # the file it came from
    warnings: tuple[str, ...] = ()

    def feed(self, name: str) -> FeedConfig | None:
        return next((f for f in self.feeds if f.name == name), None)

    def registry(self, name: str) -> RegistryConfig | None:
        return next((r for r in self.registries if r.name == name), None)

    def schedule(self, name: str) -> ScheduleConfig | None:
        return next((s for s in self.schedules if s.name == name), None)

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)
