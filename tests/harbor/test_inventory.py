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
