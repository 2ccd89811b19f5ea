"""Harbor's JSON bodies read into typed values: pure, no I/O.

Harbor's Go models serialise nil slices and maps as ``null`` (API-NOTES §5): every list and
object read here treats ``null`` as empty. A body of the wrong shape raises ``BadResponse``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.errors import BadResponse
from daemon.model import (
    REPORT_MIME_HARBOR_V10,
    REPORT_MIME_V11,
    Artifact,
    ArtifactRef,
    ScannerInfo,
    ScanOverview,
    ScanState,
    Tag,
)

DB_UPDATED_KEY = "harbor.scanner-adapter/vulnerability-database-updated-at"
SCANNABLE_TYPES = ("IMAGE",)


@dataclass(frozen=True, slots=True)
class SystemInfo:
    harbor_version: str  # "v2.14.0-abcdef"; "" when Harbor took the caller as anonymous

    @property
    def authenticated(self) -> bool:
        """Harbor shows its version to authenticated callers only (systeminfo.go)."""
        return bool(self.harbor_version)

    @property
    def version(self) -> tuple[int, ...]:
        return parse_version(self.harbor_version)

    def at_least(self, *wanted: int) -> bool:
        return self.version >= wanted


@dataclass(frozen=True, slots=True)
class Allowlist:
    """A Harbor CVE allowlist: its ids, and one expiry for the whole list (None: never)."""

    cve_ids: frozenset[str] = frozenset()
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    project_id: int
    repo_count: int
    allowlist: Allowlist = Allowlist()
    reuse_system_allowlist: bool = False


@dataclass(frozen=True, slots=True)
class Repository:
    name: str  # without the project prefix
    artifact_count: int


@dataclass(frozen=True, slots=True)
class Scanner:
    uuid: str
    name: str
    vendor: str = ""
    version: str = ""
    health: str = ""
    disabled: bool = False

    @property
    def usable(self) -> bool:
        return not self.disabled and self.health != "unhealthy"


def parse_version(text: str) -> tuple[int, ...]:
    core = text.lstrip("vV").split("-", 1)[0]
    parts: list[int] = []
    for piece in core.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def parse_time(value: object) -> datetime | None:
    """Harbor's RFC 3339 times (``…Z``, sometimes with nanoseconds); ``0001-01-01`` is "never"."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Python wants at most 6 fractional digits
        head, _, rest = text.partition(".")
        digits = re.match(r"\d*", rest).group(0)  # type: ignore[union-attr]
        tail = rest[len(digits):]
        text = f"{head}.{digits[:6]}{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return None if parsed.year <= 1 else parsed


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadResponse(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadResponse(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def system_info(body: object) -> SystemInfo:
    data = _obj(body, "systeminfo")
    return SystemInfo(_str(data.get("harbor_version")))


def project(body: object) -> Project:
    data = _obj(body, "project")
    name = _str(data.get("name"))
    if not name:
        raise BadResponse("project without a name")
    metadata = data.get("metadata") or {}
    reuse = isinstance(metadata, Mapping) and metadata.get("reuse_sys_cve_allowlist") == "true"
    return Project(name=name, project_id=_int(data.get("project_id")),
                   repo_count=_int(data.get("repo_count")),
                   allowlist=allowlist(data.get("cve_allowlist")),
                   reuse_system_allowlist=reuse)


def allowlist(body: object) -> Allowlist:
    """``{items: [{cve_id}], expires_at: <unix seconds> | null}``; null or absent is empty."""
    if not isinstance(body, Mapping):
        return Allowlist()
    items = body.get("items") or []
    ids = frozenset(_str(i.get("cve_id")) for i in items
                    if isinstance(i, Mapping) and _str(i.get("cve_id")))
    expires = body.get("expires_at")
    when = (datetime.fromtimestamp(expires, UTC)
            if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None)
    return Allowlist(ids, when)


@dataclass(frozen=True, slots=True)
class RobotAccount:
    """A robot's own record (``GET /robots``): when it expires (``None``: never)."""

    name: str
    expires_at: datetime | None
    disabled: bool


def robot_account(body: object) -> RobotAccount:
    """Harbor's ``Robot``: ``expires_at`` in Unix seconds, -1 for never."""
    data = _obj(body, "robot")
    expires = data.get("expires_at")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise BadResponse(f"robot {_str(data.get('name'))!r}: expires_at is not a number")
    when = None if expires == -1 else datetime.fromtimestamp(expires, UTC)
    return RobotAccount(_str(data.get("name")), when, data.get("disable") is True)


def repository(body: object, project_name: str) -> Repository:
    data = _obj(body, "repository")
    name = strip_project(project_name, _str(data.get("name")))
    return Repository(name=name, artifact_count=_int(data.get("artifact_count")))


def scanner(body: object) -> Scanner | None:
    if body is None:  # Harbor answers 200 `null` when the project has no scanner at all
        return None
    data = _obj(body, "scanner")
    return Scanner(
        uuid=_str(data.get("uuid")),
        name=_str(data.get("name")),
        vendor=_str(data.get("vendor")),
        version=_str(data.get("version")),
        health=_str(data.get("health")),
        disabled=bool(data.get("disabled")),
    )


def scanner_db_updated_at(body: object) -> datetime | None:
    properties = _obj(_obj(body, "scanner metadata").get("properties"), "properties")
    return parse_time(properties.get(DB_UPDATED_KEY))


def strip_project(project_name: str, full: str) -> str:
    prefix = f"{project_name}/"
    return full[len(prefix):] if full.startswith(prefix) else full


def overview(body: object) -> ScanOverview | None:
    """The ``scan_overview`` object: exactly one key (v1.1 or harbor+json 1.0); accept either."""
    data = _obj(body, "scan_overview")
    summary_data: object = None
    for mime in (REPORT_MIME_V11, REPORT_MIME_HARBOR_V10):
        if mime in data:
            summary_data = data[mime]
            break
    else:
        summary_data = next(iter(data.values()), None) if data else None
    if summary_data is None:
        return None
    s = _obj(summary_data, "scan_overview summary")
    status = _str(s.get("scan_status"))
    try:
        state = ScanState(status)
    except ValueError:
        # Harbor's summary code turns an unknown status into Error; no status is Not Scanned.
        if not status:
            return None
        state = ScanState.ERROR
    scanner_data = s.get("scanner")
    info = None
    if isinstance(scanner_data, dict):
        info = _scanner(_str(scanner_data.get("name")), _str(scanner_data.get("vendor")),
                        _str(scanner_data.get("version")))
    outer = _obj(s.get("summary"), "summary")
    counts = {sys.intern(str(k)): _int(v)
              for k, v in _obj(outer.get("summary"), "summary.summary").items()}
    return ScanOverview(
        report_id=_str(s.get("report_id")),
        state=state,
        complete_percent=_int(s.get("complete_percent")),
        start_time=parse_time(s.get("start_time")),
        end_time=parse_time(s.get("end_time")),
        scanner=info,
        counts=counts,
        total=_int(outer.get("total")),
        fixable=_int(outer.get("fixable")),
    )


@functools.lru_cache(maxsize=256)
def _scanner(name: str, vendor: str, version: str) -> ScannerInfo:
    """One ScannerInfo per distinct scanner (a walk's artifacts share a few)."""
    return ScannerInfo(name, vendor, version)


def _shared(text: str) -> str:
    """``text`` interned: a value that many artifacts of a walk repeat (a type, a media type, a
    repository or tag name) is kept once, not once per artifact."""
    return sys.intern(text)


def artifact(body: object, registry: str, project_name: str) -> Artifact:
    data = _obj(body, "artifact")
    digest = _str(data.get("digest"))
    if not digest:
        raise BadResponse("artifact without a digest")
    tags = []
    for t in _list(data.get("tags"), "tags"):
        tag = _obj(t, "tag")
        if _str(tag.get("name")):
            tags.append(Tag(_shared(_str(tag["name"])), parse_time(tag.get("push_time")),
                            parse_time(tag.get("pull_time"))))
    children, platforms = [], []
    for r in _list(data.get("references"), "references"):
        reference = _obj(r, "reference")
        child = _str(reference.get("child_digest"))
        if child:
            children.append(child)
            platforms.append(platform(reference.get("platform")))
    links = _obj(data.get("addition_links"), "addition_links")
    annotations = _obj(data.get("annotations"), "annotations")
    repo = _shared(strip_project(project_name, _str(data.get("repository_name"))))
    return Artifact(
        ref=ArtifactRef(registry, project_name, repo, digest),
        type=_shared(_str(data.get("type")) or "UNKNOWN"),
        media_type=_shared(_str(data.get("media_type"))),
        manifest_media_type=_shared(_str(data.get("manifest_media_type"))),
        tags=tuple(tags),
        push_time=parse_time(data.get("push_time")),
        pull_time=parse_time(data.get("pull_time")),
        scannable="vulnerabilities" in links,
        overview=overview(data.get("scan_overview")),
        children=tuple(children),
        child_platforms=tuple(platforms),
        size=_int(data.get("size")),
        base_name=_str(annotations.get("org.opencontainers.image.base.name")),
        base_digest=_str(annotations.get("org.opencontainers.image.base.digest")),
    )


def platform(body: object) -> str:
    """A reference's ``platform`` as ``os/architecture[/variant]`` ("" when it names none)."""
    if not isinstance(body, Mapping):
        return ""
    parts = [_str(body.get("os")), _str(body.get("architecture")), _str(body.get("variant"))]
    return "/".join(p for p in parts if p) if parts[1] else ""


def harbor_error_message(body: object) -> str:
    """``{"errors":[{"code":"NOT_FOUND","message":"…"}]}`` → ``NOT_FOUND: …`` (or "")."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    code, message = _str(first.get("code")), _str(first.get("message"))
    return f"{code}: {message}" if code and message else code or message


@dataclass(frozen=True, slots=True)
class Challenge:
    """A ``Www-Authenticate: Bearer realm=…,service=…,scope=…`` challenge."""

    realm: str
    service: str
    scope: str


_PARAM = re.compile(r'(\w+)="([^"]*)"')


def bearer_challenge(header: str) -> Challenge | None:
    """The Bearer challenge of a registry 401, or ``None`` (Basic, or none at all)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = dict(_PARAM.findall(rest))
    if not params.get("realm"):
        return None
    return Challenge(params["realm"], params.get("service", ""), params.get("scope", ""))


def registry_token(body: object) -> tuple[str, int]:
    """(token, seconds it lasts) of a token service answer (``token``, else ``access_token``;
    ``expires_in`` defaults to 60 s, as the distribution spec says)."""
    data = _obj(body, "token")
    value = _str(data.get("token")) or _str(data.get("access_token"))
    if not value:
        raise BadResponse("the token service answered without a token")
    return value, _int(data.get("expires_in")) or 60
