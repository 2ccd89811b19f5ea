"""Lineage's manifest reads are pulls in Harbor's books (``getManifest`` fires the pull event:
pull time, pull count, audit log), which pull-based retention rules and ``only_pulled_within``
read. As real subprocesses against the simulator (whose own scanner is told to retain pull
times, so that every pull seen is scanwatch's): by default each image is pulled once, by its
manifest; with ``read_manifests = false`` nothing is pulled and bases are still found, from
the listing's annotations and the build history. Facts gathered without layers are asked
again, after a day, once manifests are read."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from runkit import Cli, write_config

from daemon.lineage import Image
from daemon.sim import SimOptions, Simulator, start_simulator
from daemon.store.db import open_store

MANIFEST = "GET /v2/{name}/manifests/{reference}"
NEVER = "0001-01-01T00:00:00.000Z"
OPTIONS = SimOptions(seed=6, base_images=1, scanned_share=1.0, index_share=0.3,
                     chart_share=0.0, scanner_skip_update_pulltime=True)


def listing(sim: Simulator) -> tuple[dict[str, str], int]:
    """Each listed artifact's pull time by digest, and the pull counts of every repository."""
    repos = httpx.get(f"{sim.url}/api/v2.0/repositories", auth=sim.admin,
                      params={"page_size": 100}).json()
    times: dict[str, str] = {}
    for repo in repos:
        project, _, short = repo["name"].partition("/")
        twice = quote(quote(short, safe=""), safe="")
        arts = httpx.get(f"{sim.url}/api/v2.0/projects/{project}/repositories/{twice}/"
                         "artifacts", auth=sim.admin, params={"page_size": 100}).json()
        times.update((a["digest"], a["pull_time"]) for a in arts)
    return times, sum(r["pull_count"] for r in repos)


def run_once(tmp_path: Path, sim: Simulator, extra: str = "") -> Cli:
    path = write_config(tmp_path, sim.url, "admin")
    if extra:
        path.write_text(path.read_text().replace("max_retries = 1\n",
                                                 f"max_retries = 1\n{extra}\n"))
    cli = Cli(path, sim.admin[1])
    done = cli("run", "--once")
    assert done.returncode == 0, done.stderr
    return cli


def lineage_rows(cli: Cli) -> dict[str, dict[str, Any]]:
    shown = cli("lineage", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    return {r["digest"]: r for r in json.loads(shown.stdout)}


def test_by_default_each_image_is_pulled_once_by_its_manifest(tmp_path: Path) -> None:
    with start_simulator(OPTIONS) as sim:
        truth = sim.control.lineage()
        before, count = listing(sim)
        assert set(before.values()) == {NEVER} and count == 0
        run_once(tmp_path, sim)
        requests = sim.control.stats()["requests"]
        after, count = listing(sim)
    # every image read (an index's children, not listed, by digest); the first GET is the 401
    assert count == requests[MANIFEST] - 1 == len(truth)
    images = {i["digest"] for i in truth}
    assert {d for d, t in after.items() if t != NEVER} == images & set(after)


@pytest.mark.parametrize("platforms", [1, 2], ids=["images", "multi-arch"])
def test_without_manifest_reads_nothing_is_pulled_and_bases_are_still_found(
    tmp_path: Path, platforms: int
) -> None:
    """Every image on the base the simulator built it on, an index's children on the base's
    child of their platform (a multi-arch base is an index too)."""
    with start_simulator(replace(OPTIONS, base_images=2, base_platforms=platforms)) as sim:
        truth = sim.control.lineage()
        cli = run_once(tmp_path, sim, "read_manifests = false")
        requests = sim.control.stats()["requests"]
        after, count = listing(sim)
    assert MANIFEST not in requests and "GET /service/token" not in requests
    assert set(after.values()) == {NEVER} and count == 0
    rows = lineage_rows(cli)
    methods = set()
    for image in truth:
        row = rows[image["digest"]]
        if image["base"]:
            methods.add(row["method"])
            assert row["base_digest"] == image["base"]["digest"], row
        else:
            assert row["method"] in ("external", "unknown"), row
    assert "history" in methods and methods <= {"annotation", "history"}


def test_facts_without_layers_are_asked_again_a_day_after_once_manifests_are_read(
    tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        store.save_lineage_facts("sim", [Image("sha256:bare", "p", "r"),
                                         Image("sha256:full", "p", "r", layers=("sha256:l",))],
                                 t0)
        hour, day = t0 + timedelta(hours=1), t0 + timedelta(days=1, seconds=1)
        assert store.lineage_known("sim", day) == {"sha256:bare", "sha256:full"}
        assert store.lineage_known("sim", hour, None, True) == {"sha256:bare", "sha256:full"}
        assert store.lineage_known("sim", day, None, True) == {"sha256:full"}
        assert store.lineage_known("sim", day, ["sha256:bare"], True) == set()
    finally:
        store.close()
