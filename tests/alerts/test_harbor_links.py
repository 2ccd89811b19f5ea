"""Links into Harbor's UI carry the project id that Harbor's project listing gives, in every
message (digests included) and on the web pages, also where no walk ran in the process."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from alertkit import run_sim_schedule, sim_config

from daemon.alerts.group import context_for
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
from daemon.store import outbox as store_outbox
from daemon.store.db import open_store
from daemon.web.app import WebApp
from daemon.web.auth import BasicAuth

LINK = re.compile(r"/harbor/projects(?:/(\d+)/repositories/([^/\"]+))?"
                  r"(?:/artifacts-tab/artifacts/(sha256:[0-9a-f]+))?")


def listed_ids(sim: Any) -> dict[str, int]:
    """Project name → project_id, as Harbor's listing answers over HTTP."""
    body = httpx.get(f"{sim.url}/api/v2.0/projects", params={"page_size": 100},
                     auth=sim.admin).json()
    return {p["name"]: p["project_id"] for p in body}


def test_the_simulator_numbers_projects_like_harbor_with_gaps(make_sim: Any) -> None:
    sim = make_sim(projects=8, repositories_per_project=1, artifacts_per_repository=1,
                   scan_seconds=0.05)
    ids = listed_ids(sim)
    assert ids["library"] == 1  # Harbor creates it at install
    ordered = sorted(ids.values())
    assert len(set(ordered)) == len(ordered)
    # deleted projects leave gaps in Harbor's sequence: an id is never a listing position
    assert ordered != list(range(1, len(ordered) + 1))


def config_for(sim: Any, hook_port: int) -> Config:
    sched = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",),
                           select=("changed", "unscanned", "failed", "db_updated"))
    url = Secret(f"json://127.0.0.1:{hook_port}/hook", "literal")
    return sim_config(sim, schedules=(sched,), receivers=(ReceiverConfig("secops", (url,)),),
                      routes=(RouteConfig(("secops",), name="daily", group="digest",
                                          digest_cron="* * * * *",
                                          min_severity=Severity.NONE),))


async def test_a_digest_links_every_image_to_its_artifact_in_harbor(
        make_sim: Any, hook: Any, tmp_path: Path) -> None:
    sim = make_sim(projects=4, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=1.0, scan_seconds=0.05, index_share=0.0, chart_share=0.0,
                   cnab_share=0.0)
    cfg = config_for(sim, hook.port)
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        def now() -> datetime:
            return datetime.now(UTC)

        await run_sim_schedule(cfg, store)
        listed = listed_ids(sim)
        assert store.project_ids() == {("sim", n): listed[n] for n in
                                       {p.name for p in sim.state.inventory.projects
                                        if p.repositories}}
        start = now()
        # The digest clock starts; the scanner DB moves; the next run records the changes.
        assert build_and_queue(store, cfg, run_context=context_for(
            cfg, name="digest", kind="digest"), now=start) == []
        sim.control.db_update(added=0.5, fix_released=0.3, rescored=0.0)
        await run_sim_schedule(cfg, store)
        # As the daemon's digest job builds it: no walk, no ids of its own.
        queued = build_and_queue(store, cfg, run_context=context_for(
            cfg, name="digest", kind="digest"), now=start + timedelta(minutes=2))
        assert queued
        ids = listed_ids(sim)
        links = []
        for row in store_outbox.listing(store):
            document = json.loads(row.payload["body"])
            assert document["kind"] == "digest"
            for section in ("fix_now", "no_fix"):
                for action in document[section]:
                    links.extend((i["project"], i["repository"], i["digests"], i["link"])
                                 for i in action["images"])
        assert links
        for project, repository, digests, link in links:
            m = LINK.search(link)
            assert m and m.group(1), f"{project}/{repository}: {link} names no project id"
            assert int(m.group(1)) == ids[project]
            assert m.group(2) == repository.replace("/", "%2F")
            if len(digests) == 1:
                assert m.group(3) == digests[0]
    finally:
        store.close()


def test_the_pages_link_artifacts_with_the_stored_project_id(tmp_path: Path) -> None:
    from tests.store.store_helpers import PROJECT, REG, REPO, artifact, at, success

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:" + "a" * 64, "1.0")], at(0))
        store.record_scans([success("sha256:" + "a" * 64, ["CVE-2020-0001:zlib:1.0:1.1"],
                                    at(0))], at(0))
        store.save_project_ids(REG, {PROJECT: 42}, at(0))
        cfg = Config(registries=(RegistryConfig(name=REG, url="https://harbor.test",
                                                username="u",
                                                password=Secret("p", "literal")),))
        app = WebApp(cfg, store, BasicAuth(None))  # a fresh process: no walk of its own
        digest = "sha256:" + "a" * 64
        page = app.respond("GET", f"/images/{REG}/{PROJECT}/{REPO}@{digest}", {})
        assert page.status == 200, page.body[:300]
        want = (f"https://harbor.test/harbor/projects/42/repositories/{REPO}"
                f"/artifacts-tab/artifacts/{digest}")
        assert want in page.body.decode()
    finally:
        store.close()


def test_a_walk_replaces_the_ids_it_listed_and_keeps_the_others(tmp_path: Path) -> None:
    from tests.store.store_helpers import at

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.save_project_ids("a", {"library": 1, "payments": 4}, at(0))
        store.save_project_ids("b", {"library": 1}, at(0))
        store.save_project_ids("a", {"payments": 9, "unnumbered": 0}, at(1))  # recreated
        assert store.project_ids() == {("a", "library"): 1, ("a", "payments"): 9,
                                       ("b", "library"): 1}
    finally:
        store.close()
