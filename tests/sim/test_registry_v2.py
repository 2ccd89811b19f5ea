"""The simulator's registry side behaves as Harbor's v2auth and token service do, never kinder:
a 401 Bearer challenge naming realm, service and scope; tokens that open only what the account
may pull; a refused token answered with Basic realm="harbor"; build_history as Harbor serves
it; an index's children served by digest; an OCI manifest refused to a client that does not
accept it, as distribution does."""

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


OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def test_a_token_opens_what_the_account_may_pull_and_nothing_else(sim: Simulator) -> None:
    url = f"{sim.url}/v2/base/debian/manifests/12.4"
    good = token(sim, "repository:base/debian:pull", sim.admin)
    r = httpx.get(url, headers={"Authorization": f"Bearer {good}", "Accept": OCI})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oci.image.manifest.v1+json"
    assert r.json()["layers"][0]["digest"].startswith("sha256:")
    assert r.headers["docker-content-digest"].startswith("sha256:")
    robot = sim.robots["library"]  # a project robot of another project
    for value in (token(sim, "repository:base/debian:pull", robot),
                  token(sim, "repository:base/debian:pull", None), "forged"):
        r = httpx.get(url, headers={"Authorization": f"Bearer {value}", "Accept": OCI})
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


def test_an_oci_manifest_is_unknown_to_a_client_that_does_not_accept_it(sim: Simulator) -> None:
    good = token(sim, "repository:base/debian:pull", sim.admin)
    url = f"{sim.url}/v2/base/debian/manifests/12.4"
    for accept in (None, "application/vnd.docker.distribution.manifest.v2+json"):
        headers = {"Authorization": f"Bearer {good}", **({"Accept": accept} if accept else {})}
        r = httpx.get(url, headers=headers)
        assert r.status_code == 404
        assert r.json()["errors"][0] == {
            "code": "MANIFEST_UNKNOWN",
            "message": "OCI manifest found, but accept header does not support OCI manifests"}


def test_a_multi_arch_base_is_an_index_whose_children_are_served_by_digest() -> None:
    with start_simulator(SimOptions(seed=4, base_images=1, base_platforms=3,
                                    scanned_share=0.0)) as s:
        auth = {"Authorization": f"Bearer {token(s, 'repository:base/debian:pull', s.admin)}"}
        url = f"{s.url}/v2/base/debian/manifests"
        assert httpx.get(f"{url}/12.4", headers={**auth, "Accept": OCI}).status_code == 404
        r = httpx.get(f"{url}/12.4", headers={**auth, "Accept": f"{OCI}, {INDEX}"})
        assert (r.status_code, r.headers["content-type"]) == (200, INDEX)
        index = r.json()
        platforms = [(m["platform"]["architecture"], m["platform"].get("variant"))
                     for m in index["manifests"]]
        assert platforms == [("amd64", None), ("arm64", "v8"), ("arm", "v7")]
        layers = set()
        for entry in index["manifests"]:
            child = httpx.get(f"{url}/{entry['digest']}", headers={**auth, "Accept": OCI})
            assert child.status_code == 200
            assert child.headers["docker-content-digest"] == entry["digest"]
            layers.add(child.json()["layers"][0]["digest"])
        assert len(layers) == 3  # each platform its own root filesystem
        # The listing hides the untagged children; the index's references name their platforms.
        listing = httpx.get(f"{s.url}/api/v2.0/projects/base/repositories/debian/artifacts",
                            auth=s.admin).json()
        assert all(a["references"] and a["tags"] for a in listing)
        listed = next(a for a in listing if a["digest"] == r.headers["docker-content-digest"])
        assert [(x["child_digest"], x["platform"]) for x in listed["references"]] == [
            (m["digest"], m["platform"]) for m in index["manifests"]]
        # An application index on it has the base's platforms, each child built on the base's
        # child of its platform.
        truth = {i["digest"]: i for i in s.control.lineage()}
        children = [i for i in truth.values() if i["index"] and i["base"]]
        assert children
        for image in children:
            base = truth[image["base"]["digest"]]
            assert (base["platform"], base["index"]) == (image["platform"],
                                                         image["base"]["index"])
