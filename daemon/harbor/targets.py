"""Which artifacts a TARGET names, asked of Harbor (the parsing is in ``daemon/targets.py``).

``resolve`` asks Harbor which artifacts a target names, with as few
calls as the target allows (a single artifact is one GET). A target that names a registry,
project, repository or tag that does not exist raises ``UnknownTarget`` naming it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from daemon.config_types import Config, RegistryConfig
from daemon.errors import NotFound, UnknownTarget
from daemon.harbor.client import HarborClient
from daemon.harbor.inventory import PROJECT_LISTING_SINCE, drop_children
from daemon.harbor.wire import SystemInfo
from daemon.model import Artifact
from daemon.targets import GLOB_CHARS, Target, is_glob, parse_target

__all__ = ["GLOB_CHARS", "Target", "is_glob", "parse_target", "registry_for", "resolve"]

def registry_for(config: Config, target: Target) -> RegistryConfig:
    found = config.registry(target.registry)
    if found is None:
        known = ", ".join(r.name for r in config.registries) or "none configured"
        raise UnknownTarget(f"unknown registry {target.registry!r} (known: {known})")
    return found


async def resolve(
    client: HarborClient, target: Target, system: SystemInfo | None = None
) -> list[Artifact]:
    """The artifacts ``target`` names, freshly listed (with their scan overviews)."""
    where = target.registry
    if target.exact_artifact:
        reference = target.digest or target.tag or ""
        if reference:
            try:
                return [await client.artifact(target.project, target.repository, reference)]
            except NotFound:
                await _check_repository(client, target)
                what = "digest" if target.digest else "tag"
                raise UnknownTarget(
                    f"unknown {what} {reference!r} in {where}/{target.project}/"
                    f"{target.repository}") from None
    projects = await client.projects()
    names = [p.name for p in projects if fnmatchcase(p.name, target.project)]
    if not names:
        raise UnknownTarget(f"unknown project {target.project!r} in registry {where}")
    system = system or await client.system_info()
    found: list[Artifact] = []
    for project in names:
        if not is_glob(target.repository):
            listed = await client.repository_artifacts(project, target.repository)
            if not listed and not await _repository_exists(client, project, target.repository):
                if is_glob(target.project):
                    continue
                raise UnknownTarget(f"unknown repository {target.repository!r} in "
                                    f"{where}/{project}")
            found.extend(drop_children(listed))
        elif system.at_least(*PROJECT_LISTING_SINCE):
            found.extend(drop_children(await client.project_artifacts(project)))
        else:
            for repo in await client.repositories(project):
                if fnmatchcase(repo.name, target.repository):
                    found.extend(drop_children(
                        await client.repository_artifacts(project, repo.name)))
    matched = [a for a in found if target.matches(a)]
    exact = not is_glob(target.repository) and not is_glob(target.project)
    if not matched and exact and (target.tag or target.digest):
        raise UnknownTarget(f"no artifact matches {target.text!r}")
    return matched


async def _check_repository(client: HarborClient, target: Target) -> None:
    """Name the first missing part: project, then repository."""
    try:
        await client.project(target.project)
    except NotFound:
        raise UnknownTarget(
            f"unknown project {target.project!r} in registry {target.registry}") from None
    if not await _repository_exists(client, target.project, target.repository):
        raise UnknownTarget(f"unknown repository {target.repository!r} in "
                            f"{target.registry}/{target.project}")


async def _repository_exists(client: HarborClient, project: str, repository: str) -> bool:
    """Asked directly: Harbor lists the artifacts of a missing repository as empty, not 404."""
    try:
        await client.repository(project, repository)
    except NotFound:
        return False
    return True
