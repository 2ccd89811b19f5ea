"""The simulator records pulls as Harbor does, never kinder: a GET of a manifest through
``/v2/`` sets the artifact's pull time (its tag's too when asked by tag), adds one to the
repository's pull count and sets its update time (``getManifest`` fires the event, the
internal artifact handler writes it); a HEAD does not, nor a GET from Harbor's own replication
client; and the scanner's pull of each image it scans counts unless "Retain image last pull
time on scanning" (``scanner_skip_update_pulltime``) is set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from daemon.sim import SimOptions, Simulator, start_simulator

API = "/api/v2.0/projects/base/repositories/debian"
OCI = "application/vnd.oci.image.manifest.v1+json"
NEVER = "0001-01-01T00:00:00.000Z"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with start_simulator(SimOptions(seed=3, base_images=1, scanned_share=0.0,
                                    scan_seconds=0.1)) as s:
        yield s


def pulls(sim: Simulator) -> tuple[dict[str, str], dict[str, str], int]:
    """Each artifact's pull time by digest, each tag's by name, the repository's pull count."""
    arts = httpx.get(f"{sim.url}{API}/artifacts", auth=sim.admin,
                     params={"with_tag": "true", "page_size": 100}).json()
    repo = httpx.get(f"{sim.url}{API}", auth=sim.admin).json()
    return ({a["digest"]: a["pull_time"] for a in arts},
            {t["name"]: t["pull_time"] for a in arts for t in a["tags"] or ()},
            repo["pull_count"])


def test_a_manifest_get_is_a_pull_and_a_head_or_harbors_own_client_is_not(
    sim: Simulator
) -> None:
    arts, tags, count = pulls(sim)
    assert set(arts.values()) == set(tags.values()) == {NEVER} and count == 0
    pushed = httpx.get(f"{sim.url}{API}", auth=sim.admin).json()["update_time"]
    assert pushed < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60))
    url = f"{sim.url}/v2/base/debian/manifests"
    headers = {"Accept": OCI}
    digest = httpx.head(f"{url}/12.4", auth=sim.admin, headers=headers
                        ).headers["docker-content-digest"]
    replication = {**headers, "User-Agent": "harbor-registry-client"}
    assert httpx.get(f"{url}/12.4", auth=sim.admin, headers=replication).status_code == 200
    assert pulls(sim) == (arts, tags, 0)  # neither HEAD nor replication's GET
    before = time.time()
    assert httpx.get(f"{url}/{quote(digest, safe=':')}", auth=sim.admin,
                     headers=headers).status_code == 200
    by_digest, tags_after, count = pulls(sim)
    assert count == 1 and tags_after == tags  # by digest: no tag's pull time
    assert {d for d, t in by_digest.items() if t != NEVER} == {digest}
    assert by_digest[digest] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before - 1))
    assert httpx.get(f"{url}/12.4", auth=sim.admin, headers=headers).status_code == 200
    _, tags_after, count = pulls(sim)
    assert count == 2 and {n for n, t in tags_after.items() if t != NEVER} == {"12.4"}
    # Harbor's AddPullCount sets the repository's update_time with the count
    repo = httpx.get(f"{sim.url}{API}", auth=sim.admin).json()
    assert repo["update_time"] >= by_digest[digest]


@pytest.mark.parametrize("skip", [False, True], ids=["counted", "retained_on_scanning"])
def test_the_scanners_pull_counts_unless_harbor_is_told_to_retain_pull_times(skip: bool) -> None:
    with start_simulator(SimOptions(seed=3, base_images=1, scanned_share=0.0, scan_seconds=0.1,
                                    scanner_skip_update_pulltime=skip)) as sim:
        arts, _, _ = pulls(sim)
        digest = sorted(arts)[0]
        r = httpx.post(f"{sim.url}{API}/artifacts/{quote(digest, safe=':')}/scan",
                       auth=sim.admin)
        assert r.status_code == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            art = httpx.get(f"{sim.url}{API}/artifacts/{quote(digest, safe=':')}",
                            auth=sim.admin, params={"with_scan_overview": "true"}).json()
            if any(o.get("scan_status") == "Success"
                   for o in (art.get("scan_overview") or {}).values()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the scan did not end")
        after, _, count = pulls(sim)
        assert (after[digest] == NEVER, count) == ((True, 0) if skip else (False, 1))


def test_images_scanned_before_the_start_were_pulled_by_the_scanner() -> None:
    with start_simulator(SimOptions(seed=3, scanned_share=1.0, index_share=0.0,
                                    chart_share=0.0)) as sim:
        repos = httpx.get(f"{sim.url}/api/v2.0/repositories", auth=sim.admin).json()
        assert repos and all(r["pull_count"] > 0 for r in repos)
        for repo in repos:
            project, _, short = repo["name"].partition("/")
            twice = quote(quote(short, safe=""), safe="")  # a nested name, as Harbor asks
            listed = httpx.get(f"{sim.url}/api/v2.0/projects/{project}/repositories/"
                               f"{twice}/artifacts", auth=sim.admin).json()
            images = [a for a in listed if a["type"] == "IMAGE"]
            assert all(a["pull_time"] != NEVER for a in images), repo["name"]
