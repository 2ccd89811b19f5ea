"""The /_sim/ control endpoints: push, scanner DB updates, inventory and statistics."""

from __future__ import annotations

from typing import Any

import httpx


def test_it_pushes_a_new_tagged_artifact_over_http(sim: Any, kit: Any) -> None:
    before = sim.control.inventory()["artifacts"]
    pushed = httpx.post(sim.url + "/_sim/push", json={}).json()
    with kit.client(sim) as c:
        found = c.get(kit.art_path(pushed["project"], pushed["repository"], pushed["tag"]))
    assert found.json()["digest"] == pushed["digest"]
    assert sim.control.inventory()["artifacts"] == before + 1


def test_it_moves_a_tag_onto_a_rebuilt_digest(sim: Any, kit: Any) -> None:
    project = next(iter(sim.robots))
    with kit.client(sim) as c:
        repo = c.get(f"/projects/{project}/repositories").json()[0]["name"]
        first = sim.control.push(project=project, repository=repo, tag="stable")
        second = sim.control.push(project=project, repository=repo, tag="stable")
        now = c.get(kit.art_path(project, repo, "stable")).json()
    assert first["digest"] != second["digest"] and now["digest"] == second["digest"]


def test_it_updates_the_db_without_changing_reports_until_a_rescan(
        make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=9, projects=2, scanned_share=1.0, index_share=0.0, chart_share=0.0,
                   scan_seconds=0.05)
    with kit.client(sim) as c:
        scanners = c.get("/scanners").json()
        meta_key = "harbor.scanner-adapter/vulnerability-database-updated-at"
        meta_url = f"/scanners/{scanners[0]['uuid']}/metadata"
        before_db = c.get(meta_url).json()["properties"][meta_key]
        changes = httpx.post(sim.url + "/_sim/db-update", json={}).json()
        after_db = c.get(meta_url).json()["properties"][meta_key]
        added = changes["added"][0]
        repo = added["repositories"][0]
        project = repo.split("/")[0]
        carriers = [a for a in kit.all_artifacts(c, project)
                    if a["repository_name"] == repo and a["type"] == "IMAGE"]
        paths = [kit.art_path(project, repo, a["digest"]) for a in carriers]

        def ids() -> set[tuple[str, str]]:
            found = set()
            for path in paths:
                report = c.get(path + "/additions/vulnerabilities").json().get(kit.MIME, {})
                found |= {(v["id"], v["package"]) for v in report.get("vulnerabilities", [])}
            return found

        unchanged = ids()
        for path in paths:
            c.post(path + "/scan")
        for path in paths:
            kit.wait_for(lambda p=path: kit.overview(c.get(p, params={"with_scan_overview": "true"})
                                                     .json())["scan_status"] == "Success")
        rescanned = ids()
        scan_end = kit.overview(c.get(paths[0], params={"with_scan_overview": "true"}).json())
    assert set(changes) >= {"added", "fix_released", "rescored"}
    assert all(changes[k] for k in ("added", "fix_released", "rescored"))
    assert any(x["severity"] in ("Critical", "High", "Medium", "Low") for x in changes["added"])
    assert set(changes["added"][0]) >= {"id", "package", "version", "fix_version", "severity",
                                        "repositories"}
    assert after_db > before_db
    assert before_db < scan_end["start_time"]
    assert (added["id"], added["package"]) not in unchanged
    assert (added["id"], added["package"]) in rescanned


def test_it_stamps_the_db_later_than_every_scan(make_sim: Any, kit: Any) -> None:
    sim = make_sim(projects=1, scanned_share=1.0)
    stamp = sim.control.db_update()["db_updated_at"]
    with kit.client(sim) as c:
        ends = [kit.overview(a)["end_time"] for a in kit.all_artifacts(c, next(iter(sim.robots)))
                if kit.overview(a)]
    assert ends and all(stamp > end for end in ends)


def test_it_counts_inventory_per_project(sim: Any, kit: Any) -> None:
    counts = httpx.get(sim.url + "/_sim/inventory").json()
    with kit.client(sim) as c:
        listed = {p: int(c.get(f"/projects/{p}/artifacts").headers["X-Total-Count"])
                  for p in sim.robots}
    assert {p: v["artifacts"] for p, v in counts["per_project"].items()} == listed
    assert counts["artifacts"] == sum(listed.values())
    assert 0 < counts["scanned"] <= counts["scannable"] <= counts["artifacts"]


def test_it_counts_api_calls_only(sim: Any, kit: Any) -> None:
    httpx.post(sim.url + "/_sim/stats/reset")
    with kit.client(sim) as c:
        c.get("/projects")
        c.get("/projects")
        c.get("/nowhere")
    httpx.get(sim.url + "/_sim/inventory")
    stats = httpx.get(sim.url + "/_sim/stats").json()
    assert stats["requests"]["GET /projects"] == 2
    assert stats["total"] == 3 and stats["status"] == {"200": 2, "404": 1}
    assert stats["peak_concurrency"] >= 1 and stats["max_requests_in_1s"] >= 1
    assert stats["first_request_at"] <= stats["last_request_at"]


def test_it_switches_faults_and_the_adapter_over_http(sim: Any, kit: Any) -> None:
    rule = {"kind": "503", "path": "/api/v2.0/projects"}
    httpx.post(sim.url + "/_sim/faults", json={"faults": [rule]})
    httpx.post(sim.url + "/_sim/adapter", json={"up": False})
    with kit.client(sim) as c:
        assert c.get("/projects").status_code == 503
        assert c.get("/health").json()["status"] == "unhealthy"
    httpx.post(sim.url + "/_sim/faults", json={"faults": []})
    httpx.post(sim.url + "/_sim/adapter", json={"up": True})
    with kit.client(sim) as c:
        assert c.get("/projects").status_code == 200
        assert c.get("/health").json()["status"] == "healthy"
