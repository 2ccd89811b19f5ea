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

Given ``known`` (what history holds as present), what the listing no longer shows is looked up
directly before it may count as deleted (``daemon/harbor/confirm.py``); only a 404 confirms it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from daemon import log
from daemon.config_types import RegistryConfig
from daemon.errors import HarborError, NotFound
from daemon.harbor import packed, wire
from daemon.harbor.client import HarborClient
from daemon.harbor.confirm import Confirmation, confirm_missing, listed_refs, project_lookup
from daemon.model import Artifact, ArtifactRef, CveAllowlist

PROJECT_LISTING_SINCE = (2, 12)

_log = log.get(__name__)


@dataclass(frozen=True, slots=True)
class ProjectInventory:
    name: str
    pages: tuple[packed.Page, ...] = ()  # its artifacts, packed (``daemon/harbor/packed.py``)
    scanner: wire.Scanner | None = None
    db_updated_at: datetime | None = None
    unavailable: str = ""  # why scans cannot run here ("" when they can)
    error: str = ""  # the listing failed: the walk of this project is incomplete
    project_id: int = 0  # Harbor's id, for links into its UI

    @property
    def usable(self) -> bool:
        return not self.unavailable and not self.error

    @property
    def artifacts(self) -> tuple[Artifact, ...]:
        return tuple(packed.unpack(self.pages))

    def __len__(self) -> int:
        return packed.count(self.pages)


@dataclass(frozen=True, slots=True)
class RegistryInventory:
    registry: str
    harbor_version: str
    projects: tuple[ProjectInventory, ...] = ()
    skipped_empty: tuple[str, ...] = field(default=())
    allowlists: tuple[CveAllowlist, ...] = ()  # only with use_harbor_allowlist = true
    # What the listing missed of ``known``: found by a direct lookup and kept (restored), 404
    # (gone), or not to be told (unconfirmed); and each listing shorter than its X-Total-Count.
    restored: tuple[ArtifactRef, ...] = ()
    gone: tuple[ArtifactRef, ...] = ()
    unconfirmed: tuple[ArtifactRef, ...] = ()
    unlisted_projects: tuple[str, ...] = ()  # missing from the project listing, yet there
    short_listings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every wanted project was listed and every missing artifact confirmed gone or found:
        only then may the walk be recorded (what it lacks then counts as deleted)."""
        return not any(p.error for p in self.projects) and not self.unconfirmed

    def listing_problem(self) -> str:
        """One line on what the listing hid (empty when it showed everything it should)."""
        parts = []
        if self.short_listings:
            more = ", …" if len(self.short_listings) > 1 else ""
            parts.append(f"{len(self.short_listings)} listing(s) returned fewer items than "
                         f"their X-Total-Count ({self.short_listings[0]}{more})")
        if self.unlisted_projects:
            parts.append(f"project(s) {', '.join(self.unlisted_projects)} missing from the "
                         "project listing still exist")
        if self.restored:
            parts.append(f"{len(self.restored)} artifact(s) missing from it still exist "
                         "(direct lookup)")
        if self.unconfirmed:
            parts.append(f"{len(self.unconfirmed)} missing artifact(s) could not be looked up: "
                         "nothing recorded")
        if not parts:
            return ""
        return "the listing was incomplete: " + "; ".join(parts) + "; nothing resolved for it"

    def artifacts(self) -> list[Artifact]:
        return list(self.each())

    def usable_artifacts(self) -> list[Artifact]:
        return list(self.each(usable=True))

    def each(self, *, usable: bool = False) -> Iterator[Artifact]:
        """Every artifact (of usable projects only, with ``usable``) in walk order, unpacked a
        page at a time: what a step of the run reads without holding the walk as objects."""
        for p in self.projects:
            if p.usable or not usable:
                yield from packed.unpack(p.pages)

    def count(self) -> int:
        return sum(len(p) for p in self.projects)

    def of_repositories(self, keys: Collection[tuple[str, str]]
                        ) -> dict[tuple[str, str], list[Artifact]]:
        """The artifacts of these (project, repository) pairs, each in walk order: only the
        pages that hold them are unpacked (``Store.record_inventory`` reads a walk so)."""
        wanted = set(keys)
        out: dict[tuple[str, str], list[Artifact]] = {}
        for p in self.projects:
            for page in p.pages:
                if any((page.project, repo) in wanted for repo, _ in page.sizes):
                    for a in page.artifacts():
                        key = (a.ref.project, a.ref.repository)
                        if key in wanted:
                            out.setdefault(key, []).append(a)
        return out

    def project(self, name: str) -> ProjectInventory | None:
        return next((p for p in self.projects if p.name == name), None)

    def db_times(self) -> dict[str, datetime | None]:
        return {p.name: p.db_updated_at for p in self.projects}

    def repository_sizes(self) -> dict[tuple[str, str], int]:
        sizes: dict[tuple[str, str], int] = {}
        for p in self.projects:
            for page in p.pages:
                for repo, n in page.sizes:
                    key = (page.project, repo)
                    sizes[key] = sizes.get(key, 0) + n
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


def kept_pages(pages: list[packed.Page], wanted: Callable[[str], bool] = lambda repo: True
               ) -> list[packed.Page]:
    """``drop_children`` of a packed listing, after dropping the repositories not ``wanted``:
    the pages as they are where there is nothing to drop, else packed again."""
    if all(wanted(repo) for p in pages for repo, _ in p.sizes):
        kept = pages
    else:
        kept = packed.pack(a for a in packed.unpack(pages) if wanted(a.ref.repository))
    children: frozenset[tuple[str, str]] = frozenset().union(*(p.children for p in kept))
    if not children:
        return kept
    return packed.pack(a for a in packed.unpack(kept)
                       if a.tags or (a.ref.repository, a.ref.digest) not in children)


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
    known: Sequence[ArtifactRef] = (),
    scope: Collection[tuple[str, str]] | None = None,
) -> RegistryInventory:
    """One walk of ``registry``. Raises HarborError only when the registry itself fails
    (``/systeminfo`` or the project list); a failing project is recorded in its ``error``.
    ``known``: the top-level artifacts history holds as present, to confirm what went missing.
    ``scope``: (project, repository) pairs; only those repositories are walked, each by its own
    listing, and only their projects are read (a webhook's small run: a few calls, not the
    registry's listing)."""
    system = system or await client.system_info()
    if scope is not None:
        only_projects = sorted({p for p, _ in scope})
        projects = await _projects_named(client, only_projects)
    else:
        projects = await client.projects()

    def in_scope(name: str) -> bool:
        return matches(name, registry.projects, registry.exclude_projects) and (
            only_projects is None or name in set(only_projects))

    def repo_in_scope(project: str, repository: str) -> bool:
        return repository_wanted(registry, project, repository) and (
            scope is None or (project, repository) in scope)

    wanted = [p for p in projects if in_scope(p.name)]
    known = [r for r in known if in_scope(r.project) and repo_in_scope(r.project, r.repository)]
    confirmation = Confirmation()
    unlisted = sorted({r.project for r in known} - {p.name for p in wanted})
    for name, found in zip(unlisted, await asyncio.gather(
            *(project_lookup(client, n) for n in unlisted)), strict=True):
        if isinstance(found, wire.Project):
            wanted.append(found)  # the listing hid it (a short page): walk it all the same
        else:
            confirmation.add([r for r in known if r.project == name], found)
    empty = tuple(p.name for p in wanted if p.repo_count == 0)
    db = _ScannerDB(client)
    by_project = system.at_least(*PROJECT_LISTING_SINCE)
    ids = {p.name: p.project_id for p in wanted}
    listed = [dataclasses.replace(found, project_id=ids.get(found.name, 0))
              for found in await asyncio.gather(*(
                  _walk_project(client, registry, p.name, db, by_project,
                                None if scope is None else
                                sorted(r for q, r in scope if q == p.name and
                                       repository_wanted(registry, q, r)))
                  for p in wanted if p.repo_count > 0))]
    listed = await _confirm(client, listed, known, {p.name for p in wanted}, confirmation)
    allowlists = (await _allowlists(client, registry.name, wanted)
                  if registry.use_harbor_allowlist and scope is None else ())
    inventory = RegistryInventory(
        registry.name, system.harbor_version, tuple(listed), empty, allowlists,
        restored=tuple(a.ref for a in confirmation.restored), gone=tuple(confirmation.gone),
        unconfirmed=tuple(confirmation.unconfirmed),
        unlisted_projects=tuple(n for n in unlisted if n in ids),
        short_listings=tuple(client.short_listings))
    _log.info("inventory_walked", registry=registry.name, version=system.harbor_version,
              projects=len(listed), empty_projects=len(empty),
              artifacts=inventory.count(),
              unavailable=[p.name for p in listed if p.unavailable],
              failed=[p.name for p in listed if p.error])
    problem = inventory.listing_problem()
    if problem:
        _log.warning("listing_incomplete", registry=registry.name, problem=problem)
    return inventory


async def _confirm(
    client: HarborClient, listed: list[ProjectInventory], known: Sequence[ArtifactRef],
    walked: set[str], confirmation: Confirmation,
) -> list[ProjectInventory]:
    """Look up what ``known`` holds and the listing of a walked project did not show; keep what
    still exists as if listed. A project whose listing failed is left alone: the walk is
    incomplete anyway and records nothing."""
    failed = {p.name for p in listed if p.error}
    candidates = [r for r in known if r.project in walked and r.project not in failed]
    # Every known artifact against the listing: beside the loop, not on it (as the run's
    # other whole-walk steps).
    missed = await asyncio.to_thread(not_listed, listed, candidates, children=True)
    missing = [r for r in candidates if (r.project, r.repository, r.digest) in missed]
    if not missing:
        return listed
    repositories = {(p.project, repo) for q in listed for p in q.pages for repo, _ in p.sizes}
    found = await confirm_missing(client, missing, repositories)
    confirmation.gone.extend(found.gone)
    confirmation.unconfirmed.extend(found.unconfirmed)
    confirmation.restored.extend(found.restored)
    by_project: dict[str, list[Artifact]] = {}
    for art in found.restored:
        by_project.setdefault(art.ref.project, []).append(art)
    out = [dataclasses.replace(p, pages=p.pages + tuple(packed.pack(by_project.pop(p.name, ()))))
           for p in listed]
    for name, arts in by_project.items():  # listed with no repositories, yet it has some
        out.append(ProjectInventory(name, tuple(packed.pack(arts)),
                                    unavailable="listed with no repositories"))
    return out


def not_listed(projects: Sequence[ProjectInventory], refs: Iterable[ArtifactRef], *,
               children: bool) -> set[tuple[str, str, str]]:
    """(project, repository, digest) of each of ``refs`` that no project of the walk listed
    (nor, with ``children``, named as an index's child). Set against each project's listing a
    project at a time: no set of every artifact of the registry is held."""
    of_project: dict[str, set[tuple[str, str]]] = {}
    for r in refs:
        of_project.setdefault(r.project, set()).add((r.repository, r.digest))
    missed: set[tuple[str, str, str]] = set()
    for name, held in of_project.items():
        walked = (a for p in projects if p.name == name for a in packed.unpack(p.pages))
        present = listed_refs(walked) if children else {
            (a.ref.project, a.ref.repository, a.ref.digest) for a in walked}
        missed.update((name, repo, digest) for repo, digest in held
                      if (name, repo, digest) not in present)
        del present
    return missed


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


async def _projects_named(client: HarborClient, names: Sequence[str]) -> list[wire.Project]:
    """The named projects, each read on its own; one Harbor no longer has is left out."""
    found = await asyncio.gather(*(client.project(n) for n in names), return_exceptions=True)
    for result in found:
        if isinstance(result, BaseException) and not isinstance(result, NotFound):
            raise result
    return [p for p in found if isinstance(p, wire.Project)]


async def _walk_project(
    client: HarborClient, registry: RegistryConfig, project: str, db: _ScannerDB,
    by_project: bool, repositories: Sequence[str] | None = None,
) -> ProjectInventory:
    scanner_task = asyncio.ensure_future(client.project_scanner(project))
    try:
        if repositories is None:
            pages = await _list_artifacts(client, registry, project, by_project)
        else:
            # An empty listing here is a repository deleted (or emptied) since the event:
            # what history holds of it goes through confirmation like any missing artifact.
            per_repo = await asyncio.gather(
                *(client.repository_listing(project, r) for r in repositories))
            pages = [p for listing in per_repo for p in kept_pages(listing)]
    except HarborError as exc:
        scanner_task.cancel()
        _log.warning("project_listing_failed", registry=registry.name, project=project,
                     error=str(exc))
        return ProjectInventory(project, error=str(exc))
    try:
        scanner = await scanner_task
    except HarborError as exc:
        return ProjectInventory(project, tuple(pages),
                                unavailable=f"scanner unavailable: {exc}")
    unavailable = ""
    if scanner is None:
        unavailable = "scanner unavailable: the project has no scanner"
    elif scanner.disabled:
        unavailable = f"scanner unavailable: {scanner.name} is disabled"
    elif scanner.health == "unhealthy":
        unavailable = f"scanner unavailable: {scanner.name} is unhealthy"
    else:
        images = sum(p.images for p in pages)
        if images and not sum(p.scannable_images for p in pages):
            unavailable = (f"scanner unavailable: every image looks unsupported by "
                           f"{scanner.name} (is the adapter down?)")
    db_time = await db.get(scanner.uuid) if scanner is not None and not unavailable else None
    if unavailable:
        _log.warning("scanner_unavailable", registry=registry.name, project=project,
                     reason=unavailable)
    return ProjectInventory(project, tuple(pages), scanner, db_time, unavailable)


async def _list_artifacts(
    client: HarborClient, registry: RegistryConfig, project: str, by_project: bool
) -> list[packed.Page]:
    if by_project:
        listed = await client.project_listing(project)
        return kept_pages(listed, lambda repo: repository_wanted(registry, project, repo))
    repositories = [r for r in await client.repositories(project)
                    if repository_wanted(registry, project, r.name) and r.artifact_count != 0]
    per_repo = await asyncio.gather(
        *(client.repository_listing(project, r.name) for r in repositories))
    for repo, listing in zip(repositories, per_repo, strict=True):
        if not listing:
            # Harbor lists a repository deleted since the repository listing as empty (200 [],
            # not 404): that proves nothing, so the project's walk is incomplete this run.
            raise HarborError(f"registry {registry.name}: {project}/{repo.name} counted "
                              f"{repo.artifact_count} artifacts but listed none")
    return [p for listing in per_repo for p in kept_pages(listing)]
