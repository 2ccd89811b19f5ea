"""What a simulator is asked to be: inventory sizes, scan timing, Harbor version, faults.

Field names mirror the flags of ``scanwatch sim serve`` (``--scan-seconds`` → ``scan_seconds``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

FAULT_KINDS = ("500", "502", "503", "429", "reset", "slow", "malformed", "truncated")


@dataclass(frozen=True)
class FaultRule:
    """One fault: with probability ``rate``, calls whose path matches ``path`` (a glob on the
    decoded path, e.g. ``/api/v2.0/projects/*``) and ``method`` (``*`` = any) get ``kind``.

    Kinds: ``500``/``502``/``503`` (error body), ``429`` (``Retry-After`` of ``retry_after``
    seconds, or as an HTTP date when ``retry_after_date``), ``reset`` (the connection is reset
    without a response), ``slow`` (answers after ``delay`` seconds), ``malformed`` (200 with a
    body that is not JSON), ``truncated`` (the body stops halfway and the connection closes).
    """

    kind: str
    rate: float = 1.0
    path: str = "/api/v2.0/*"
    method: str = "*"
    delay: float = 1.0
    retry_after: int = 1
    retry_after_date: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(FAULT_KINDS)})")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not between 0 and 1")

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """``kind=503,rate=0.1,path=/api/v2.0/projects/*,method=GET,delay=2,retry_after=3,
        retry_after_date=true``; a bare first word is the kind (``503,rate=0.1``)."""
        values: dict[str, object] = {}
        for n, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
            key, sep, value = part.partition("=")
            if not sep:
                if n != 0:
                    raise ValueError(f"fault {text!r}: {part!r} is not key=value")
                key, value = "kind", part
            key = key.strip().replace("-", "_")
            if key in ("rate", "delay"):
                values[key] = float(value)
            elif key == "retry_after":
                values[key] = int(value)
            elif key == "retry_after_date":
                values[key] = value.strip().lower() in ("1", "true", "yes", "date")
            elif key in ("kind", "path", "method"):
                values[key] = value.strip()
            else:
                raise ValueError(f"fault {text!r}: unknown key {key!r}")
        if "kind" not in values:
            raise ValueError(f"fault {text!r}: no kind")
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FaultRule:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        kwargs["kind"] = str(kwargs.get("kind", ""))
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SimOptions:
    seed: int = 1
    projects: int = 3
    repositories_per_project: int = 3
    artifacts_per_repository: int = 3
    vulnerabilities_per_artifact: int = 20
    scanned_share: float = 0.5
    index_share: float = 0.1
    chart_share: float = 0.1
    cnab_share: float = 0.0
    scan_seconds: float = 2.0
    scanner_concurrency: int = 1
    job_workers: int = 10
    error_share: float = 0.0
    harbor_version: str = "v2.14.0"
    trivy_reports: Path | str | None = None
    port: int = 0
    host: str = "127.0.0.1"
    admin_password: str = "Harbor12345"
    login_freeze: float = 1.5  # Harbor's frozenTime: a failed login locks the name this long
    webhook_retry_delay: float = 3.0  # seconds between jobservice's delivery attempts
    webhook_drop_share: float = 0.0  # events lost outright (Harbor drops after its attempts)
    faults: tuple[FaultRule, ...] = field(default_factory=tuple)
    # Base images in a ``base`` project (debian, alpine: up to 2), ``base_tags`` tags each, that
    # application images are built on (their layers start with the base's); 0: every image is
    # built on an external base. ``annotated_share`` of OCI images carry the OCI base annotations.
    base_images: int = 0
    base_tags: int = 3
    annotated_share: float = 0.5
    # 1: each base tag is one linux/amd64 image; 2 or 3: an OCI index of that many platforms
    # (amd64, arm64/v8, arm/v7), as Docker Hub's debian is, and an image index built on it
    # has one child per platform of its base, each built on the base's child of that platform.
    base_platforms: int = 1
    feeds: dict[str, str] = field(default_factory=dict)  # "kev"/"epss" -> file served
    # Harbor's "Retain image last pull time on scanning" (``scanner_skip_update_pulltime``,
    # off by default): when off, the scanner's pull of each image it scans is a pull.
    scanner_skip_update_pulltime: bool = False

    def __post_init__(self) -> None:
        for name in ("scanned_share", "index_share", "chart_share", "cnab_share", "error_share",
                     "webhook_drop_share", "annotated_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} = {value} is not between 0 and 1")
        if self.index_share + self.chart_share + self.cnab_share > 1.0:
            raise ValueError("index_share + chart_share + cnab_share is above 1")
        for name in ("projects", "repositories_per_project", "artifacts_per_repository",
                     "scanner_concurrency", "job_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.base_images <= 2 or self.base_tags < 1:
            raise ValueError("base_images must be 0, 1 or 2 and base_tags at least 1")
        if not 1 <= self.base_platforms <= 3:
            raise ValueError("base_platforms must be 1, 2 or 3")
        if self.login_freeze < 0:
            raise ValueError("login_freeze cannot be negative")
        if self.vulnerabilities_per_artifact < 0 or self.scan_seconds < 0:
            raise ValueError("vulnerabilities_per_artifact and scan_seconds cannot be negative")
        for feed, path in self.feeds.items():
            if not Path(path).is_file():
                raise ValueError(f"the {feed} feed file {path} does not exist")
        if not self.harbor_version.startswith("v"):
            raise ValueError(f"harbor_version {self.harbor_version!r} must look like v2.14.0")

    def version_tuple(self) -> tuple[int, ...]:
        core = self.harbor_version[1:].split("-", 1)[0]
        return tuple(int(p) for p in core.split(".") if p.isdigit())
