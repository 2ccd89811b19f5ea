"""Repository listings: one project's (``listRepositories``) and every visible one's
(``listAllRepositories``), with Harbor's ``q``, ``sort`` and default order.

Harbor builds both from ``q.Build`` over its ``RepoRecord`` (src/server/v2.0/handler/
repository.go, src/pkg/repository/model/model.go): ``q`` and ``sort`` keys are its columns, an
unknown key is skipped rather than refused, a fuzzy match is ``icontains``, and without a usable
``sort`` the order is newest first (``-creation_time, -repository_id``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daemon.sim import render
from daemon.sim.api import Request, Response, dumps, matches
from daemon.sim.inventory import Project, Repository

# ``blob_digest`` (FilterByBlobDigest) is left out: the simulator keeps no blobs.
COLUMNS = ("repository_id", "name", "project_id", "description", "pull_count", "star_count",
           "creation_time", "update_time")


def _value(repo: Repository, column: str) -> Any:
    return {
        "repository_id": repo.id, "name": repo.name, "project_id": repo.project.id,
        "description": "", "pull_count": repo.pull_count, "star_count": 0,
        "creation_time": int(repo.creation_time),
        "update_time": int(repo.update_time()),
    }[column]


def query(req: Request, repos: list[Repository]) -> list[Repository]:
    """``repos`` filtered by ``q`` and ordered by ``sort`` as Harbor's ORM does."""
    for key, op, want in req.q():
        if key not in COLUMNS:
            continue
        if op == "fuzzy":
            repos = [r for r in repos if str(want).lower() in str(_value(r, key)).lower()]
        else:
            repos = [r for r in repos if matches(op, want, _value(r, key))]
    sorts = []
    for term in (req.query.get("sort") or "").split(","):
        column = term.strip().removeprefix("-")
        if column in COLUMNS:
            sorts.append((column, term.strip().startswith("-")))
    if not sorts:
        sorts = [("creation_time", True), ("repository_id", True)]
    for column, descending in reversed(sorts):  # stable sorts, last key first
        repos = sorted(repos, key=_by(column), reverse=descending)
    return repos


def _by(column: str) -> Callable[[Repository], Any]:
    return lambda repo: _value(repo, column)


def visible_projects(req: Request) -> list[Project]:
    """The projects whose repositories a caller may list: every one for the admin, its own and
    the public ones for a project robot, the public ones for anyone else (``Request.can_read``,
    as ``GET /projects`` lists them)."""
    return [p for p in req.state.inventory.projects if req.can_read(p)]


def list_all_repositories(req: Request) -> Response:
    """``GET /repositories``: Harbor answers 200 with an empty page (not 401 or 403) to a
    caller with no project, because the listing is filtered, not guarded."""
    with req.state.lock:
        repos = query(req, [r for p in visible_projects(req) for r in p.repositories])
        chosen, headers = req.paginate(repos)
        return Response(200, dumps([render.repository(r) for r in chosen]), headers=headers)


def list_repositories(req: Request) -> Response:
    with req.state.lock:
        project = req.project("project_name", by_name=True)
        chosen, headers = req.paginate(query(req, list(project.repositories)))
        return Response(200, dumps([render.repository(r) for r in chosen]), headers=headers)
