"""The simulator's registry side behaves as Harbor's v2auth and token service do, never kinder:
a 401 Bearer challenge naming realm, service and scope; tokens that open only what the account
may pull; a refused token answered with Basic realm="harbor"; build_history as Harbor serves
it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from daemon.sim import SimOptions, Simulator, start_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with start_simulator(SimOptions(seed=3, base_images=1, scanned_share=0.0)) as s:
        yield s


def token(sim: Simulator, scope: str, auth: tuple[str, str] | None) -> str:
    r = httpx.get(f"{sim.url}/service/token", params={"service": "harbor-registry",
                                                       "scope": scope}, auth=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] == 1800 and body["issued_at"].endswith("Z")
    return str(body["token"])


def test_an_anonymous_manifest_request_gets_the_bearer_challenge(sim: Simulator) -> None:
    r = httpx.get(f"{sim.url}/v2/base/debian/manifests/12.4")
    assert r.status_code == 401
    host = sim.url.removeprefix("http://")
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="http://{host}/service/token",service="harbor-registry",'
        'scope="repository:base/debian:pull"')
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_a_token_opens_what_the_account_may_pull_and_nothing_else(sim: Simulator) -> None:
    url = f"{sim.url}/v2/base/debian/manifests/12.4"
    good = token(sim, "repository:base/debian:pull", sim.admin)
    r = httpx.get(url, headers={"Authorization": f"Bearer {good}"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oci.image.manifest.v1+json"
    assert r.json()["layers"][0]["digest"].startswith("sha256:")
    assert r.headers["docker-content-digest"].startswith("sha256:")
    robot = sim.robots["library"]  # a project robot of another project
    for value in (token(sim, "repository:base/debian:pull", robot),
                  token(sim, "repository:base/debian:pull", None), "forged"):
        r = httpx.get(url, headers={"Authorization": f"Bearer {value}"})
        assert (r.status_code, r.headers["www-authenticate"]) == (401, 'Basic realm="harbor"')
    other = token(sim, "repository:library/nginx:pull", sim.admin)  # another repository
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 401


def test_the_token_service_refuses_an_unknown_service(sim: Simulator) -> None:
    r = httpx.get(f"{sim.url}/service/token", params={"service": "other"}, auth=sim.admin)
    assert r.status_code == 400


def test_build_history_is_the_config_history_and_other_additions_are_400(
        sim: Simulator) -> None:
    image = next(i for i in sim.control.lineage() if i["base"])
    project, repo = image["repository"].split("/", 1)
    base = (f"{sim.url}/api/v2.0/projects/{project}/repositories/"
            f"{quote(quote(repo, safe=''), safe='')}/artifacts/{image['digest']}/additions")
    r = httpx.get(f"{base}/build_history", auth=sim.admin)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    steps = r.json()
    assert steps[0]["created_by"].startswith("/bin/sh -c #(nop) ADD file:")
    assert any(s.get("empty_layer") for s in steps) and not all(s.get("empty_layer")
                                                               for s in steps)
    assert httpx.get(f"{base}/readme.md", auth=sim.admin).status_code == 400
