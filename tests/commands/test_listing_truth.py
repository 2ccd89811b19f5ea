"""What a listing hides is not deleted until Harbor says 404 to a direct lookup.

A real proxy on 127.0.0.1 (tests/registry_proxy.py) sits between ``scanwatch run --once`` (a
subprocess) and the simulator and degrades the listings of a second run, after a first good run
stored findings in a real SQLite file: pages of artifacts one item short of their
``X-Total-Count``, a project left out of the project list. Nothing may be resolved for it, and
the run says on stderr, in one line, that the listing was incomplete. An artifact really deleted
in Harbor is still resolved as ``image_removed``, degraded listing or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_proxy import ListingProxy
from runkit import World, error_lines, open_findings, present, resolved, snapshot

from daemon.sim import FaultRule, SimOptions, start_simulator

VERSIONS = [pytest.param("v2.14.0", id="project-listing"),
            pytest.param("v2.10.0", id="per-repository-listing")]


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, ListingProxy]]:
    """Two projects of 120 artifacts (two pages each), all scanned; a first run through the
    proxy while it still passes everything through."""
    version = getattr(request, "param", "v2.14.0")
    sim = start_simulator(SimOptions(
        seed=9, projects=2, repositories_per_project=3, artifacts_per_repository=40,
        vulnerabilities_per_artifact=8, scanned_share=1.0, index_share=0.0, chart_share=0.0,
        scan_seconds=0.1, harbor_version=version))
    proxy = ListingProxy(sim.url)
    try:
        yield World(sim, tmp_path, "admin", sim.admin[1], next(iter(sim.robots)),
                    url=proxy.url), proxy
    finally:
        proxy.close()
        sim.stop()


def warnings(result: Any) -> list[str]:
    return [ln for ln in error_lines(result) if ln.startswith("scanwatch: warning: ")]


@pytest.mark.parametrize("world", VERSIONS, indirect=True)
def test_pages_short_of_their_total_resolve_nothing(world: tuple[World, ListingProxy]) -> None:
    w, proxy = world
    before, held = open_findings(w.cli.database), present(w.cli.database)
    proxy.drop_per_page = True
    result = w.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert proxy.dropped >= 4  # two pages per project, or one per repository before v2.12
    assert resolved(w.cli.database) == {}
    assert open_findings(w.cli.database) == before
    assert present(w.cli.database) == held  # no artifact marked removed, no tag closed
    [line] = warnings(result)
    assert "the listing was incomplete" in line and "fewer items than their X-Total-Count" in line
    assert f"{proxy.dropped} artifact(s) missing from it still exist" in line


def test_a_project_left_out_of_the_project_list_resolves_nothing(
    world: tuple[World, ListingProxy]
) -> None:
    w, proxy = world
    before, held = open_findings(w.cli.database), present(w.cli.database)
    hidden = list(w.sim.robots)[1]
    assert any(f[0] == hidden for f in before)
    proxy.hide_projects = {hidden}  # and the count lowered to match: the page looks whole
    result = w.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert resolved(w.cli.database) == {}
    assert open_findings(w.cli.database) == before
    assert present(w.cli.database) == held  # its artifacts still there, their tags still open
    [line] = warnings(result)
    assert f"project(s) {hidden} missing from the project listing still exist" in line


@pytest.mark.parametrize("fault", [
    pytest.param("/api/v2.0/projects/{p}", id="project-lookup-fails"),
    pytest.param("/api/v2.0/projects/{p}/artifacts", id="project-listing-fails"),
])
def test_a_hidden_project_that_cannot_be_looked_up_records_nothing(
    world: tuple[World, ListingProxy], fault: str
) -> None:
    w, proxy = world
    hidden = list(w.sim.robots)[1]
    w.sim.control.set_faults([FaultRule("503", path=fault.format(p=hidden), method="GET")])
    if fault.endswith("{p}"):
        proxy.hide_projects = {hidden}
    before = snapshot(w.cli.database)
    result = w.cli("run", "--once")
    after = snapshot(w.cli.database)
    assert resolved(w.cli.database) == {}
    for table in ("finding", "finding_event", "artifact", "tag", "repository"):
        assert after[table] == before[table], table  # the walk is not recorded at all
    assert result.returncode == 0, result.stderr  # the registry answered; one project did not
    if fault.endswith("{p}"):
        [line] = warnings(result)
        assert "missing artifact(s) could not be looked up: nothing recorded" in line
    else:
        assert f"{hidden}: not listed: " in result.stdout


@pytest.mark.parametrize("world", VERSIONS, indirect=True)
def test_an_artifact_deleted_in_harbor_is_resolved_as_image_removed(
    world: tuple[World, ListingProxy]
) -> None:
    w, proxy = world
    project = next(iter(w.sim.robots))
    with w.sim.state.lock:
        repo = w.sim.state.inventory.project(project, by_id=False).repositories[1]
        digests = [a.digest for a in repo.artifacts]
    for digest in digests:  # every artifact of one repository: its findings have no other home
        w.sim.control.delete(project, repo.name, digest)
    before = open_findings(w.cli.database)
    theirs = {f for f in before if (f[0], f[1]) == (project, repo.short)}
    assert theirs
    proxy.drop_per_page = True  # degraded listings around it change nothing
    result = w.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert resolved(w.cli.database) == {f: "image_removed" for f in theirs}
    assert set(open_findings(w.cli.database)) == set(before) - theirs
