"""Before anything counts as deleted, Harbor says so: a direct lookup answers 404.

A listing can hide what still exists: a page shorter than its ``X-Total-Count``, a proxy that
drops items, a project the caller can no longer list (a permission change, a robot whose scope
shrank, Harbor taking a failed login as anonymous). So the walk compares what it listed with
what history holds as present (``known``) and looks up only what went missing, with the fewest
calls: one ``GET`` per missing project, per repository that lost every artifact, and per other
missing artifact. An unchanged registry costs nothing here.

Each missing artifact ends up in one of three places: ``restored`` (the lookup found it; the walk
keeps it as listed), ``gone`` (404 on the artifact, its repository or its project) or
``unconfirmed`` (the lookup failed otherwise: 401, 403, 5xx), which makes the walk incomplete so
that the run records nothing of it and resolves nothing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from daemon import log
from daemon.errors import HarborError, NotFound
from daemon.harbor import wire
from daemon.harbor.client import HarborClient
from daemon.model import Artifact, ArtifactRef

_log = log.get(__name__)

@dataclass
class Confirmation:
    restored: list[Artifact] = field(default_factory=list)
    gone: list[ArtifactRef] = field(default_factory=list)
    unconfirmed: list[ArtifactRef] = field(default_factory=list)

    def add(self, refs: Iterable[ArtifactRef], outcome: NotFound | HarborError) -> None:
        (self.gone if isinstance(outcome, NotFound) else self.unconfirmed).extend(refs)


async def project_lookup(client: HarborClient, project: str) -> wire.Project | HarborError:
    """The project as a direct lookup shows it, NotFound when Harbor has no such project, else
    the error that leaves it unknown. Existence comes from ``HEAD /projects?project_name=``,
    which any authenticated caller may ask: ``GET /projects/{name}`` answers a robot 403 for a
    deleted project as for one it may not read (base.go RequireProjectAccess)."""
    try:
        if not await client.project_exists(project):
            return NotFound(f"registry {client.name}: project {project} does not exist", 404)
        return await client.project(project)
    except HarborError as exc:
        return exc


def listed_refs(artifacts: Iterable[Artifact]) -> set[tuple[str, str, str]]:
    """(project, repository, digest) of every listed artifact and of each index's children."""
    out: set[tuple[str, str, str]] = set()
    for a in artifacts:
        out.add((a.ref.project, a.ref.repository, a.ref.digest))
        out.update((a.ref.project, a.ref.repository, child) for child in a.children)
    return out


async def confirm_missing(
    client: HarborClient, missing: Sequence[ArtifactRef],
    listed_repositories: set[tuple[str, str]],
) -> Confirmation:
    """Look up each of ``missing`` (artifacts history holds that the listing did not show);
    a repository that lost every artifact is looked up once instead of artifact by artifact."""
    found = Confirmation()
    by_repo: dict[tuple[str, str], list[ArtifactRef]] = defaultdict(list)
    for ref in missing:
        by_repo[(ref.project, ref.repository)].append(ref)

    async def one_repository(key: tuple[str, str], refs: list[ArtifactRef]) -> None:
        if key not in listed_repositories:
            try:
                await client.repository(*key)
            except HarborError as exc:
                found.add(refs, exc)
                return
        outcomes = await asyncio.gather(*(_lookup(client, r) for r in refs))
        for ref, outcome in zip(refs, outcomes, strict=True):
            if isinstance(outcome, Artifact):
                found.restored.append(outcome)
            else:
                found.add([ref], outcome)

    await asyncio.gather(*(one_repository(k, v) for k, v in by_repo.items()))
    if missing:
        _log.warning("listing_missed_artifacts", registry=client.name, missing=len(missing),
                     restored=len(found.restored), gone=len(found.gone),
                     unconfirmed=len(found.unconfirmed))
    return found


async def _lookup(client: HarborClient, ref: ArtifactRef) -> Artifact | HarborError:
    try:
        return await client.artifact(ref.project, ref.repository, ref.digest)
    except HarborError as exc:
        return exc
