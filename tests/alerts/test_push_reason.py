"""A push, checked against what the simulator pushed: every item the new image brings says
``new``/``new_image`` in the JSON document and "arrived with a push of TAG" in the words Slack
and email show, and no other item is in the message (issue 12, "every item says why").

The expected CVEs are read from Harbor's API (the simulator over HTTP): the pushed digest's
vulnerability report, less what the repository carried before the push.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from alertkit import sim_config
from hookkit import Hook

from daemon.alerts.deliver import deliver_pending
from daemon.config_types import ReceiverConfig, RouteConfig, ScheduleConfig, Secret
from daemon.model import Severity
from daemon.scan.queue import QueueOptions
from daemon.service.cycle import run_cycle
from daemon.store.db import open_store

FAST = QueueOptions(poll_initial=0.02, poll_max=0.1, early_error_window=0.1)
MIME = "application/vnd.security.vulnerability.report; version=1.1"


def report_of(sim: Any, repository: str, digest: str) -> set[tuple[str, str]]:
    project, short = repository.split("/", 1)
    url = (f"{sim.url}/api/v2.0/projects/{project}/repositories/"
           f"{quote(quote(short, safe=''), safe='')}/artifacts/{digest}/additions/vulnerabilities")
    body = httpx.get(url, auth=sim.admin, headers={"X-Accept-Vulnerabilities": MIME}).json()
    return {(v["id"], v["package"]) for v in body[MIME]["vulnerabilities"]}


async def test_a_pushed_image_s_items_say_they_arrived_with_that_push(
        make_sim: Any, trivy_fixtures: Path, tmp_path: Path) -> None:
    # Images carry the real Trivy fixtures' packages: the pushed one another fixture's.
    sim = make_sim(seed=3, projects=1,
                   repositories_per_project=1, artifacts_per_repository=1,
                   scanned_share=1.0, index_share=0.0, chart_share=0.0, cnab_share=0.0,
                   scan_seconds=0.02, scanner_concurrency=8, trivy_reports=str(trivy_fixtures))
    hook = Hook()
    try:
        receivers = (ReceiverConfig("doc", (Secret(f"json://127.0.0.1:{hook.port}/doc",
                                                   "literal"),)),
                     ReceiverConfig("words", (Secret(f"json://127.0.0.1:{hook.port}/words",
                                                     "literal"),), format="text"))
        schedule = ScheduleConfig(name="nightly", cron="0 2 * * *", registries=("sim",),
                                  select=("changed", "unscanned", "failed"))
        cfg = sim_config(sim, schedules=(schedule,), receivers=receivers, routes=(
            RouteConfig(("doc", "words"), name="all", min_severity=Severity.NONE),))
        store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
        clock = [datetime.now(UTC)]

        async def cycle() -> None:
            clock[0] += timedelta(minutes=1)
            await run_cycle(cfg, store, schedule, trigger="once", now_fn=lambda: clock[0],
                            options=FAST)
            await deliver_pending(store, cfg, now_fn=lambda: clock[0])

        try:
            await cycle()  # first sight: nothing announced
            before = len(hook.bodies)
            project = sim.state.inventory.projects[0]
            repo = project.repositories[0]
            carried = {(f.key.vulnerability, f.key.package) for f in store.open_findings()
                       if f.key.repository == repo.short}
            pushed = sim.control.push(project.name, repo.short, "9.9.0")
            await cycle()
        finally:
            store.close()
        expected = report_of(sim, pushed["repository"], pushed["digest"]) - carried
        assert expected, "seed 3's push brings CVEs the repository did not carry"
        got = {path: json.loads(body["message"]) if path == "/doc" else body["message"]
               for path, body in zip(hook.paths[before:], hook.bodies[before:], strict=True)}
        doc, words = got["/doc"], got["/words"]
        items = [(v, a) for s in ("fix_now", "no_fix") for a in doc[s]
                 for v in a["vulnerabilities"]]
        assert {(v["id"], a["package"]) for v, a in items} == expected
        for v, a in items:
            assert (v["change"], v["reason"]) == ("new", "new_image"), v
            assert any("9.9.0" in i["tags"] for i in a["images"]), a["images"]
            assert f"{v['id']} (" in words
        assert words.count("arrived with a push of 9.9.0") == len({v["id"] for v, _ in items})
    finally:
        hook.shutdown()
