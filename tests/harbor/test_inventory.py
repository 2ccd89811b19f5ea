"""The inventory walk against the simulator: the fewest calls, per Harbor version."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from daemon.config_types import RegistryConfig, Secret
from daemon.harbor.client import HarborClient
from daemon.harbor.inventory import walk


def registry(sim: Any, **kw: Any) -> RegistryConfig:
    return RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                          password=Secret(sim.admin[1], "literal"),
                          requests_per_second=500, burst=100, **kw)


@pytest.mark.parametrize(
    ("version", "repository_calls"),
    [
        pytest.param("v2.14.0", 0, id="project-listing-on-2.12-plus"),
        pytest.param("v2.10.0", 2, id="per-repository-before-2.12"),
    ],
)
async def test_it_walks_with_the_fewest_calls(
    make_sim: Any, version: str, repository_calls: int
) -> None:
    sim = make_sim(projects=2, repositories_per_project=3, artifacts_per_repository=4,
                   index_share=0.3, chart_share=0.2, harbor_version=version)
    cfg = registry(sim)
    async with HarborClient(cfg) as client:
        inventory = await walk(client, cfg)
    counted = sim.control.inventory()
    requests = sim.control.stats()["requests"]
    assert len(inventory.artifacts()) == counted["artifacts"]
    assert requests.get("GET /projects/{project_name}/repositories", 0) == repository_calls
    assert requests["GET /scanners/{registration_id}/metadata"] == 1  # one distinct scanner
    assert requests["GET /projects/{project_name_or_id}/scanner"] == 2
    indexes = [a for a in inventory.artifacts() if a.children]
    assert indexes and all(a.type == "IMAGE" for a in indexes)
    assert all(p.db_updated_at is not None for p in inventory.projects)


async def test_it_applies_project_and_repository_globs(make_sim: Any) -> None:
    sim = make_sim(projects=3, repositories_per_project=2, artifacts_per_repository=2)
    names = sorted(sim.control.inventory()["per_project"])
    async with HarborClient(registry(sim)) as client:
        every = await walk(client, registry(sim))
    dropped = every.artifacts()[0].ref.repository
    cfg = registry(sim, exclude_projects=(names[0],), exclude_repositories=(dropped,))
    async with HarborClient(cfg) as client:
        inventory = await walk(client, cfg)
    assert names[0] not in {p.name for p in inventory.projects}
    assert inventory.artifacts()
    assert all(a.ref.repository != dropped for a in inventory.artifacts())


async def test_it_marks_projects_unavailable_when_the_adapter_is_down(make_sim: Any) -> None:
    sim = make_sim(projects=2, repositories_per_project=1, artifacts_per_repository=3)
    sim.control.set_adapter(False)
    cfg = registry(sim)
    async with HarborClient(cfg) as client:
        inventory = await walk(client, cfg)
    assert inventory.projects and all(p.unavailable for p in inventory.projects)
    assert inventory.usable_artifacts() == []


class _RepositoryGoneMeanwhile(httpx.AsyncHTTPTransport):
    """Real HTTP to the simulator, whose repository listing of ``project`` gains a repository
    that is deleted before its artifacts are listed: the simulator, like Harbor, then lists that
    repository's artifacts as empty (200 ``[]``), not 404."""

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path != f"/api/v2.0/projects/{self.project}/repositories":
            return response
        body = json.loads(await response.aread())
        body.append({**body[0], "id": 9999, "name": f"{self.project}/gone", "artifact_count": 2})
        headers = {**response.headers, "X-Total-Count": str(len(body))}
        headers.pop("content-length", None)
        return httpx.Response(response.status_code, headers=headers, json=body)


async def test_it_does_not_believe_an_empty_listing_of_a_counted_repository(
        make_sim: Any) -> None:
    sim = make_sim(projects=2, repositories_per_project=2, artifacts_per_repository=2,
                   harbor_version="v2.10.0")
    gone, kept = sorted(sim.control.inventory()["per_project"])
    cfg = registry(sim)
    async with HarborClient(cfg, transport=_RepositoryGoneMeanwhile(gone)) as client:
        inventory = await walk(client, cfg)
        listed = await client.repository_artifacts(gone, "gone")
    assert listed == []  # what Harbor answers: nothing to tell "deleted" from "empty"
    walked = {p.name: p for p in inventory.projects}
    assert f"{gone}/gone counted 2 artifacts but listed none" in walked[gone].error
    assert not inventory.complete  # so nothing in that project can be resolved this run
    assert walked[kept].usable and walked[kept].artifacts
def refs(inventory: Any) -> list[Any]:
    return [a.ref for a in inventory.artifacts()]


async def test_it_looks_up_only_what_the_listing_missed(make_sim: Any) -> None:
    sim = make_sim(projects=2, repositories_per_project=2, artifacts_per_repository=3,
                   index_share=0.0, chart_share=0.0)
    cfg = registry(sim)
    async with HarborClient(cfg) as client:
        first = await walk(client, cfg)
    known = refs(first)
    sim.control.reset_stats()
    async with HarborClient(cfg) as client:
        again = await walk(client, cfg, known=known)
    requests = sim.control.stats()["requests"]
    assert again.complete and not (again.restored or again.gone or again.unconfirmed)
    assert not any(route.startswith("HEAD") or route.endswith("/artifacts/{reference}")
                   for route in requests)  # an unchanged registry costs no lookup at all

    deleted = known[0]
    sim.control.delete(deleted.project, deleted.repository, deleted.digest)
    sim.control.reset_stats()
    async with HarborClient(cfg) as client:
        after = await walk(client, cfg, known=known)
    requests = sim.control.stats()["requests"]
    assert after.gone == (deleted,) and after.complete and not after.restored
    assert requests[
        "GET /projects/{project_name}/repositories/{repository_name}/artifacts/{reference}"] == 1
    assert after.listing_problem() == ""  # a real deletion is no listing problem


async def test_a_robot_whose_scope_shrank_confirms_nothing(make_sim: Any) -> None:
    sim = make_sim(projects=2, repositories_per_project=1, artifacts_per_repository=2,
                   index_share=0.0, chart_share=0.0)
    admin = registry(sim)
    async with HarborClient(admin) as client:
        known = refs(await walk(client, admin))
    own, other = list(sim.robots)
    name, secret = sim.robots[own]
    robot = RegistryConfig(name="sim", url=sim.url, username=name,
                           password=Secret(secret, "literal"), requests_per_second=500, burst=100)
    async with HarborClient(robot) as client:
        inventory = await walk(client, robot, known=known)
    # The other project exists (HEAD /projects answers 200) but this robot may not read it (403):
    # its artifacts are neither listed nor gone, and the walk may not be recorded.
    assert {r.project for r in inventory.unconfirmed} == {other}
    assert not inventory.gone and not inventory.complete
    assert "could not be looked up" in inventory.listing_problem()
