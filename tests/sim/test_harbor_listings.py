"""Listings and registrations as Harbor's code serves them (src/server/v2.0/handler/
repository.go, artifact.go, base.go ``Links``; src/controller/scanner/base_controller.go)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

CAPABILITIES = {"support_vulnerability": True, "support_sbom": True}


@pytest.fixture
def listed(make_sim: Any) -> Any:
    return make_sim(seed=3, projects=2, repositories_per_project=4, artifacts_per_repository=7)


def _repos(c: httpx.Client, path: str = "/repositories", **params: str) -> list[str]:
    response = c.get(path, params={"page_size": "100", **params})
    assert response.status_code == 200, response.text
    return [r["name"] for r in response.json()]


def test_it_links_a_nested_repositorys_next_page_with_the_name_encoded_twice(
        listed: Any, kit: Any) -> None:
    project = next(iter(listed.robots))
    with kit.client(listed) as c:
        nested = next(n.split("/", 1)[1] for n in _repos(c) if n.startswith(project + "/")
                      and n.count("/") == 2)
        path = f"/projects/{project}/repositories/{kit.enc(nested)}/artifacts"
        first = c.get(path, params={"page_size": "3"})
        link = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"])
        assert link is not None
        assert link.group(1).startswith(f"/api/v2.0{path}?")
        assert "%252F" in link.group(1)
        second = httpx.get(listed.url + link.group(1), auth=listed.admin)
        everything = c.get(path, params={"page_size": "100"}).json()
    assert second.status_code == 200
    assert [a["digest"] for a in first.json() + second.json()] == \
        [a["digest"] for a in everything[:6]]


@pytest.mark.parametrize(("page", "links"), [
    (1, ['rel="next"']), (2, ['rel="prev"', 'rel="next"']), (3, ['rel="prev"']), (4, [])],
    ids=["first", "middle", "last", "past-the-end"])
def test_it_links_prev_only_to_a_page_that_has_items(listed: Any, kit: Any, page: int,
                                                      links: list[str]) -> None:
    with kit.client(listed) as c:
        response = c.get("/repositories", params={"page_size": "3", "page": str(page)})
    assert response.headers["X-Total-Count"] == "8"
    found = response.headers.get("Link", "")
    assert [rel for rel in ('rel="prev"', 'rel="next"') if rel in found] == links


@pytest.mark.parametrize(("who", "project", "repository", "status"), [
    ("admin", "own", "no-such-repository", 200), ("admin", "no-such-project", "app", 200),
    ("robot", "other", "no-such-repository", 403), ("robot", "no-such-project", "app", 403),
    ("anonymous", "own", "no-such-repository", 401)],
    ids=["missing-repository", "missing-project", "robot-other-project",
         "robot-missing-project", "anonymous"])
def test_it_lists_nothing_for_a_repository_that_does_not_exist(
        listed: Any, kit: Any, who: str, project: str, repository: str, status: int) -> None:
    own, other = list(listed.robots)
    name = {"own": own, "other": other}.get(project, project)
    auth = {"admin": listed.admin, "robot": listed.robots[own], "anonymous": None}[who]
    with httpx.Client(base_url=listed.url + "/api/v2.0", auth=auth) as c:
        response = c.get(f"/projects/{name}/repositories/{repository}/artifacts")
        lookup = c.get(f"/projects/{name}/repositories/{repository}")
    assert response.status_code == status
    if status == 200:
        assert response.json() == [] and response.headers["X-Total-Count"] == "0"
        assert "Link" not in response.headers
        assert lookup.status_code == 404  # only the direct lookup says it is not there


@pytest.mark.parametrize(("who", "expect"), [("admin", 8), ("robot", 4), ("anonymous", 0)],
                         ids=["admin-sees-all", "robot-sees-its-project", "anonymous-sees-none"])
def test_it_lists_every_repository_the_caller_may_see(listed: Any, kit: Any, who: str,
                                                      expect: int) -> None:
    own = next(iter(listed.robots))
    auth = {"admin": listed.admin, "robot": listed.robots[own], "anonymous": None}[who]
    with httpx.Client(base_url=listed.url + "/api/v2.0", auth=auth) as c:
        response = c.get("/repositories", params={"page_size": "100"})
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == str(expect)
    names = [r["name"] for r in response.json()]
    assert len(names) == expect
    if who == "robot":
        assert all(n.startswith(own + "/") for n in names)


def _newest_first(c: httpx.Client) -> list[str]:
    rows = c.get("/repositories", params={"page_size": "100"}).json()
    return [r["name"] for r in sorted(rows, key=lambda r: (r["creation_time"], r["id"]),
                                      reverse=True)]


@pytest.mark.parametrize(("params", "expect"), [
    ({}, lambda names, c: names == _newest_first(c)),
    ({"sort": "name"}, lambda names, c: names == sorted(names)),
    ({"sort": "-name"}, lambda names, c: names == sorted(names, reverse=True)),
    ({"sort": "no_such_column"}, lambda names, c: names == _newest_first(c)),
    ({"q": "name=~TEAM"}, lambda names, c: names and all("team" in n for n in names)),
    ({"q": "project_id=2"}, lambda names, c: len(names) == 4
     and all(n.startswith(names[0].split("/")[0] + "/") for n in names)),
    ({"q": "no_such_column=1"}, lambda names, c: len(names) == 8),
], ids=["default-newest-first", "sort-name", "sort-name-desc", "unknown-sort-key-ignored",
        "fuzzy-is-case-insensitive", "project-id", "unknown-q-key-ignored"])
def test_it_filters_and_sorts_all_repositories_like_harbor(listed: Any, kit: Any,
                                                           params: dict[str, str],
                                                           expect: Any) -> None:
    with kit.client(listed) as c:
        names = _repos(c, **params)
        assert expect(names, c), names


def test_it_sorts_one_projects_repositories_the_same_way(listed: Any, kit: Any) -> None:
    project = next(iter(listed.robots))
    with kit.client(listed) as c:
        mine = _repos(c, f"/projects/{project}/repositories")
        everything = _repos(c)
        by_name = _repos(c, f"/projects/{project}/repositories", sort="name")
    assert mine == [n for n in everything if n.startswith(project + "/")]
    assert by_name == sorted(mine)


@pytest.mark.parametrize(("version", "adapter_up", "expect"), [
    ("v2.10.3", True, None), ("v2.11.0", True, CAPABILITIES), ("v2.14.0", True, CAPABILITIES),
    ("v2.14.0", False, None)],
    ids=["v2.10-never", "v2.11-from-the-adapter", "v2.14", "v2.14-adapter-down"])
def test_it_sends_scanner_capabilities_from_v2_11_while_the_adapter_answers(
        make_sim: Any, kit: Any, version: str, adapter_up: bool, expect: Any) -> None:
    sim = make_sim(projects=1, harbor_version=version)
    if not adapter_up:
        sim.control.set_adapter(False)
    with kit.client(sim) as c:
        listed = c.get("/scanners").json()
        one = c.get(f"/scanners/{listed[0]['uuid']}").json()
        own = c.get(f"/projects/{next(iter(sim.robots))}/scanner").json()
    for registration in (*listed, one, own):
        assert registration.get("capabilities") == expect
