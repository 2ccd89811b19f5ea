"""Lineage against the simulator over real HTTP: the base found for every application image is
the one the simulator built it on, manifests come once per digest through Harbor's token flow,
and a newer base tag that fixes CVEs leads the next alert with "Rebuild on …"."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.config_types import (
    Config,
    ReceiverConfig,
    RegistryConfig,
    RouteConfig,
    ScheduleConfig,
    Secret,
)
from daemon.model import Severity
from daemon.scan.run import run_schedule
from daemon.sim import SimOptions, Simulator, start_simulator
from daemon.store import outbox as store_outbox
from daemon.store.db import open_store

MANIFEST = "GET /v2/{name}/manifests/{reference}"
HISTORY = ("GET /projects/{project_name}/repositories/{repository_name}/artifacts/"
           "{reference}/additions/{addition}")


def config(sim: Simulator, select: tuple[str, ...] = ()) -> Config:
    registry = RegistryConfig(name="sim", url=sim.url, username="admin",
                              password=Secret(sim.admin[1], "literal"),
                              requests_per_second=500, burst=50, max_concurrent_requests=8,
                              max_scans_in_flight=8)
    schedule = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",),
                              select=select)
    hook = Secret("json://127.0.0.1:9/hook", "literal")  # queued only: nothing is sent
    return Config(registries=(registry,), schedules=(schedule,),
                  receivers=(ReceiverConfig("secops", (hook,)),),
                  routes=(RouteConfig(("secops",), name="sec", min_severity=Severity.UNKNOWN,
                                      events=("new", "fix_available", "rebuild_available")),))


def run(cfg: Config, store: Any) -> Any:
    return asyncio.run(run_schedule(cfg, store, cfg.schedules[0], trigger="test",
                                    now_fn=lambda: datetime.now(UTC)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield s
    s.close()


@pytest.mark.parametrize(("seed", "platforms"), [(1, 1), (2, 2), (3, 3), (4, 2)],
                         ids=lambda v: str(v))
def test_the_base_found_is_the_one_the_simulator_built_the_image_on(
        seed: int, platforms: int, store: Any) -> None:
    """Every image, each child of an image index included, on the base image of its platform
    (a multi-arch base is an index too: annotations name the index, layers pick the child)."""
    options = SimOptions(seed=seed, base_images=2, base_platforms=platforms,
                         scanned_share=1.0, index_share=0.3)
    with start_simulator(options) as sim:
        result = run(config(sim), store)
        assert result.ok
        truth = sim.control.lineage()
    images, found = store.lineage_view("sim")
    assert len(found) == len(truth)
    assert {i.digest: (i.index, i.platform) for i in images if i.index} == {
        i["digest"]: (i["index"], i["platform"]) for i in truth if i["index"]}
    methods = set()
    for image in truth:
        want = image["base"]["digest"] if image["base"] else ""
        got = found[image["digest"]]
        assert got.base_digest == want, (image["repository"], image["tags"], got)
        if image["base"]:
            methods.add((got.method, bool(image["index"])))
            assert got.base == f"{image['base']['repository']}:{image['base']['tags'][0]}"
    assert {m for m, _ in methods} == {"annotation", "layers"}
    assert {child for _, child in methods} == {True, False}


@pytest.mark.parametrize("seed", [7, 8])
def test_manifests_are_fetched_once_per_digest_through_the_token_flow(seed: int,
                                                                      store: Any) -> None:
    """Each image's manifest once, an index's children each by digest (never the index's own
    manifest: the listing's references name the children and their platforms)."""
    options = SimOptions(seed=seed, base_images=1, base_platforms=2, scanned_share=1.0,
                         index_share=0.4)
    with start_simulator(options) as sim:
        cfg = config(sim)
        run(cfg, store)
        first = sim.control.stats()
        run(cfg, store)
        second = sim.control.stats()
        truth = sim.control.lineage()
        images = len(truth)
    assert sum(1 for i in truth if i["index"]) >= 4  # children of bases and applications
    # One 401 names the realm; then one token per repository and one manifest per digest.
    assert first["requests"][MANIFEST] == images + 1
    assert first["requests"]["GET /service/token"] == len(
        {i.name for i in store.lineage_view("sim")[0]})
    assert first["requests"][HISTORY] == images  # build_history: each image's config
    assert second["requests"].get(MANIFEST, 0) == first["requests"][MANIFEST]
    assert second["requests"].get(HISTORY, 0) == images


@pytest.mark.parametrize(("seed", "platforms", "indexes", "projects"),
                         [(5, 1, 0.0, 3), (6, 2, 0.4, 2)], ids=("images", "multi-arch"))
def test_a_new_base_tag_leads_the_next_alert_with_the_rebuild(
        seed: int, platforms: int, indexes: float, projects: int, store: Any) -> None:
    """Single images on a single base, or image indexes (and images) on a multi-arch base:
    the new tag's child of each platform is what each child is rebuilt on."""
    options = SimOptions(seed=seed, projects=projects, base_images=1, base_tags=1,
                         base_platforms=platforms, scanned_share=1.0, index_share=indexes,
                         chart_share=0.0,
                         scan_seconds=0.05, scanner_concurrency=8)
    read: list[str] = []  # the registries whose lineage the alerts stage read
    view = store.lineage_view
    store.lineage_view = lambda registry: (read.append(registry), view(registry))[1]
    with start_simulator(options) as sim:
        cfg = config(sim, select=("changed", "unscanned", "db_updated"))
        run(cfg, store)
        read.clear()  # (the run's own lineage step reads it too)
        build_and_queue(store, cfg, run_context=RunContext(name="nightly"),
                        now=datetime.now(UTC))  # the registry's first run: quiet
        assert read == []  # nothing to attribute: every image's lineage left unread
        old = {i["repository"] for i in sim.control.lineage() if i["base"]}
        app_indexes = {i["index"] for i in sim.control.lineage() if i["index"] and i["base"]}
        sim.control.db_update(added=0.6, fix_released=0.0, rescored=0.0)
        pushed = sim.control.push("base", "debian")
        run(cfg, store)
        read.clear()
        build_and_queue(store, cfg, run_context=RunContext(name="nightly"),
                        now=datetime.now(UTC))
    assert read == ["sim"]  # once, for the message that attributes the new findings
    bodies = [json.loads(r.payload["body"]) for r in store_outbox.listing(store)]
    assert len(bodies) == 1
    doc = bodies[0]
    lead = doc["rebuilds"][0]
    assert lead["rebuild_on"] == f"base/debian:{pushed['tag']}"
    assert lead["base_image"] == "base/debian:12.4"
    assert {f"{i['project']}/{i['repository']}" for i in lead["images"]} == old
    if indexes:  # an index's findings come from the base through its children's bases
        assert app_indexes & {d for i in lead["images"] for d in i["digests"]}
    assert lead["vulnerabilities"]
    based = [a for a in doc["fix_now"] if a["rebuild_on"]]
    assert {v["id"] for a in based for v in a["vulnerabilities"]} == set(lead["vulnerabilities"])
    own = [a for a in doc["fix_now"] + doc["no_fix"] if a["source"] == "own"]
    assert own and all(a["base_image"] == "base/debian:12.4" for a in own)
    assert any("pip install" in (a["build_step"] or "") or "npm ci" in (a["build_step"] or "")
               or "--from=build" in (a["build_step"] or "") for a in own)


def test_scanwatch_lineage_lists_each_image_with_its_base(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    s = open_store(url)
    with start_simulator(SimOptions(seed=9, base_images=1, base_tags=2, scanned_share=1.0,
                                    index_share=0.0)) as sim:
        run(config(sim), s)
        truth = {i["digest"]: i for i in sim.control.lineage()}
    s.close()
    proc = subprocess.run([str(Path(sys.executable).with_name("scanwatch")), "lineage",
                           "--registry", "sim", "--database", url, "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    rows = json.loads(proc.stdout)
    assert {r["digest"] for r in rows} == set(truth)
    for r in rows:
        base = truth[r["digest"]]["base"]
        assert r["base_digest"] == (base["digest"] if base else None)
        if base and base["tags"] == ["12.4"]:  # the older tag: 12.5 is newer
            assert r["rebuild_on"] in ("base/debian:12.5", None)
