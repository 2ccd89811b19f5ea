"""Walk one registry: projects → artifacts with their scan overviews, tags and index children.

The walk makes the fewest calls that tell the whole state (bench/collect.py measures it):
``/systeminfo`` once, the project list by pages, and for each project with repositories its
scanner and its artifacts by pages: ``GET /projects/{p}/artifacts`` on Harbor ≥ v2.12, one
listing per repository before. The scanner's metadata (its DB time) is read once per distinct
scanner. Projects with ``repo_count == 0`` cost nothing beyond the project list. An index's
children come from its ``references``; they are not listed or fetched on their own.

A project whose scanner is missing, disabled or unhealthy, or where every image suddenly looks
unsupported (the adapter is down: API-NOTES §5), is marked unavailable: the run scans nothing
there and resolves nothing there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from daemon import log
from daemon.config_types import RegistryConfig
from daemon.errors import HarborError
from daemon.harbor import wire
from daemon.harbor.client import HarborClient
from daemon.model import Artifact, CveAllowlist

PROJECT_LISTING_SINCE = (2, 12)

_log = log.get(__name__)


@dataclass(frozen=True, slots=True)
class ProjectInventory:
    name: str
    artifacts: tuple[Artifact, ...] = ()
    scanner: wire.Scanner | None = None
    db_updated_at: datetime | None = None
    unavailable: str = ""  # why scans cannot run here ("" when they can)
    error: str = ""  # the listing failed: the walk of this project is incomplete
    project_id: int = 0  # Harbor's id, for links into its UI

    @property
    def usable(self) -> bool:
        return not self.unavailable and not self.error


@dataclass(frozen=True, slots=True)
class RegistryInventory:
    registry: str
    harbor_version: str
    projects: tuple[ProjectInventory, ...] = ()
    skipped_empty: tuple[str, ...] = field(default=())
    allowlists: tuple[CveAllowlist, ...] = ()  # only with use_harbor_allowlist = true

    @property
    def complete(self) -> bool:
        """Every wanted project was listed: only then may missing artifacts count as deleted."""
        return not any(p.error for p in self.projects)

    def artifacts(self) -> list[Artifact]:
        return [a for p in self.projects for a in p.artifacts]

    def usable_artifacts(self) -> list[Artifact]:
        return [a for p in self.projects if p.usable for a in p.artifacts]

    def project(self, name: str) -> ProjectInventory | None:
        return next((p for p in self.projects if p.name == name), None)

    def db_times(self) -> dict[str, datetime | None]:
        return {p.name: p.db_updated_at for p in self.projects}

    def repository_sizes(self) -> dict[tuple[str, str], int]:
        sizes: dict[tuple[str, str], int] = {}
        for a in self.artifacts():
            key = (a.ref.project, a.ref.repository)
            sizes[key] = sizes.get(key, 0) + 1
        return sizes


def matches(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    return any(fnmatchcase(name, p) for p in include) and not any(
        fnmatchcase(name, p) for p in exclude)


def repository_wanted(registry: RegistryConfig, project: str, repository: str) -> bool:
    """Repository globs match the name with or without its project (``team/*``, ``proj/team/*``)."""
    names = (repository, f"{project}/{repository}")
    include, exclude = registry.repositories, registry.exclude_repositories
    return any(fnmatchcase(n, p) for n in names for p in include) and not any(
        fnmatchcase(n, p) for n in names for p in exclude)


def drop_children(artifacts: Sequence[Artifact]) -> list[Artifact]:
    """An untagged child of a listed index belongs to that index, not to the list."""
    children = {(a.ref.repository, c) for a in artifacts for c in a.children}
    return [a for a in artifacts
            if a.tags or (a.ref.repository, a.ref.digest) not in children]


class _ScannerDB:
    """The DB time of each distinct scanner, read once however many projects share it."""

    def __init__(self, client: HarborClient) -> None:
        self._client = client
        self._tasks: dict[str, asyncio.Task[datetime | None]] = {}

    async def get(self, uuid: str) -> datetime | None:
        if not uuid:
            return None
        if uuid not in self._tasks:
            self._tasks[uuid] = asyncio.ensure_future(self._read(uuid))
        return await self._tasks[uuid]

    async def _read(self, uuid: str) -> datetime | None:
        try:
            return await self._client.scanner_db_updated_at(uuid)
        except HarborError as exc:
            _log.warning("scanner_metadata_unavailable", registry=self._client.name,
                         scanner=uuid, error=str(exc))
            return None


async def walk(
    client: HarborClient,
    registry: RegistryConfig,
    *,
    only_projects: Sequence[str] | None = None,
    system: wire.SystemInfo | None = None,
) -> RegistryInventory:
    """One walk of ``registry``. Raises HarborError only when the registry itself fails
    (``/systeminfo`` or the project list); a failing project is recorded in its ``error``."""
    system = system or await client.system_info()
    projects = await client.projects()
    wanted = [p for p in projects if matches(p.name, registry.projects, registry.exclude_projects)]
    if only_projects is not None:
        wanted = [p for p in wanted if p.name in set(only_projects)]
    empty = tuple(p.name for p in wanted if p.repo_count == 0)
    db = _ScannerDB(client)
    by_project = system.at_least(*PROJECT_LISTING_SINCE)
    ids = {p.name: p.project_id for p in wanted}
    listed = [dataclasses.replace(found, project_id=ids.get(found.name, 0))
              for found in await asyncio.gather(*(
                  _walk_project(client, registry, p.name, db, by_project)
                  for p in wanted if p.repo_count > 0))]
    allowlists = (await _allowlists(client, registry.name, wanted)
                  if registry.use_harbor_allowlist else ())
    inventory = RegistryInventory(registry.name, system.harbor_version, tuple(listed), empty,
                                  allowlists)
    _log.info("inventory_walked", registry=registry.name, version=system.harbor_version,
              projects=len(listed), empty_projects=len(empty),
              artifacts=len(inventory.artifacts()),
              unavailable=[p.name for p in listed if p.unavailable],
              failed=[p.name for p in listed if p.error])
    return inventory


async def _allowlists(
    client: HarborClient, registry: str, projects: Sequence[wire.Project]
) -> tuple[CveAllowlist, ...]:
    """Each project's effective CVE allowlist: its own, or the system's where it reuses that."""
    system = await client.system_allowlist()
    out = []
    for p in projects:
        chosen = system if p.reuse_system_allowlist else p.allowlist
        if chosen.cve_ids:
            out.append(CveAllowlist(registry, chosen.cve_ids, chosen.expires_at, p.name))
    return tuple(out)


async def _walk_project(
    client: HarborClient, registry: RegistryConfig, project: str, db: _ScannerDB,
    by_project: bool,
) -> ProjectInventory:
    scanner_task = asyncio.ensure_future(client.project_scanner(project))
    try:
        artifacts = await _list_artifacts(client, registry, project, by_project)
    except HarborError as exc:
        scanner_task.cancel()
        _log.warning("project_listing_failed", registry=registry.name, project=project,
                     error=str(exc))
        return ProjectInventory(project, error=str(exc))
    try:
        scanner = await scanner_task
    except HarborError as exc:
        return ProjectInventory(project, tuple(artifacts),
                                unavailable=f"scanner unavailable: {exc}")
    unavailable = ""
    if scanner is None:
        unavailable = "scanner unavailable: the project has no scanner"
    elif scanner.disabled:
        unavailable = f"scanner unavailable: {scanner.name} is disabled"
    elif scanner.health == "unhealthy":
        unavailable = f"scanner unavailable: {scanner.name} is unhealthy"
    else:
        images = [a for a in artifacts if a.type.upper() == "IMAGE"]
        if images and not any(a.scannable for a in images):
            unavailable = (f"scanner unavailable: every image looks unsupported by "
                           f"{scanner.name} (is the adapter down?)")
    db_time = await db.get(scanner.uuid) if scanner is not None and not unavailable else None
    if unavailable:
        _log.warning("scanner_unavailable", registry=registry.name, project=project,
                     reason=unavailable)
    return ProjectInventory(project, tuple(artifacts), scanner, db_time, unavailable)


async def _list_artifacts(
    client: HarborClient, registry: RegistryConfig, project: str, by_project: bool
) -> list[Artifact]:
    if by_project:
        listed = await client.project_artifacts(project)
        kept = [a for a in listed if repository_wanted(registry, project, a.ref.repository)]
        return drop_children(kept)
    repositories = [r for r in await client.repositories(project)
                    if repository_wanted(registry, project, r.name) and r.artifact_count != 0]
    per_repo = await asyncio.gather(
        *(client.repository_artifacts(project, r.name) for r in repositories))
    for repo, listing in zip(repositories, per_repo, strict=True):
        if not listing:
            # Harbor lists a repository deleted since the repository listing as empty (200 [],
            # not 404): that proves nothing, so the project's walk is incomplete this run.
            raise HarborError(f"registry {registry.name}: {project}/{repo.name} counted "
                              f"{repo.artifact_count} artifacts but listed none")
    return [a for listing in per_repo for a in drop_children(listing)]
