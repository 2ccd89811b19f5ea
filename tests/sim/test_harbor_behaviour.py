"""The simulator reproduces Harbor's behaviour from API-NOTES (encoding, auth, scans, reports)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from daemon.sim import FaultRule


def _image(sim: Any, kit: Any, c: httpx.Client) -> dict[str, Any]:
    return kit.find(sim, c, lambda a: a["type"] == "IMAGE" and not a["references"] and a["tags"])


def test_it_decodes_repository_names_twice_like_harbor(sim: Any, kit: Any) -> None:
    with kit.client(sim) as c:
        project = next(iter(sim.robots))
        repos = c.get(f"/projects/{project}/repositories", params={"page_size": 100}).json()
        nested = next(r["name"] for r in repos if r["name"].count("/") >= 2)
        short = nested.split("/", 1)[1]
        twice = c.get(f"/projects/{project}/repositories/{kit.enc(short)}/artifacts")
        once = c.get(f"/projects/{project}/repositories/{short.replace('/', '%2F')}/artifacts")
    assert twice.status_code == 200 and twice.json()
    assert once.status_code == 404
    assert "was not found" in once.json()["errors"][0]["message"]


def test_it_refuses_posts_that_send_the_sid_cookie_back(sim: Any, kit: Any) -> None:
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        path = kit.art_path(art["repository_name"].split("/")[0], art["repository_name"],
                            art["digest"])
    with httpx.Client(base_url=sim.url + "/api/v2.0", auth=sim.admin) as keeps_cookies:
        first = keeps_cookies.get("/projects")
        assert "sid" in first.cookies
        refused = keeps_cookies.post(path + "/scan")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["message"] == "CSRF token invalid"


def test_it_scans_pending_running_success_and_answers_empty_while_scanning(
        make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=3, projects=1, scanned_share=1.0, index_share=0.0, chart_share=0.0,
                   scan_seconds=0.3)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        project = art["repository_name"].split("/")[0]
        path = kit.art_path(project, art["repository_name"], art["digest"])
        before = c.get(path + "/additions/vulnerabilities").json()
        assert before[kit.MIME]["vulnerabilities"]
        assert c.post(path + "/scan").status_code == 202
        # The rescan deleted the old report at trigger time.
        assert c.get(path + "/additions/vulnerabilities").json() == {}
        assert c.post(path + "/scan").status_code == 409
        seen = set()

        def done() -> Any:
            summary = kit.overview(c.get(path, params={"with_scan_overview": "true"}).json())
            seen.add(summary["scan_status"])
            return summary if summary["scan_status"] == "Success" else None

        final = kit.wait_for(done)
        after = c.get(path + "/additions/vulnerabilities").json()
    assert seen & {"Pending", "Running"}
    assert final["complete_percent"] == 100 and final["summary"]["total"] == len(
        after[kit.MIME]["vulnerabilities"])


def test_it_merges_the_overview_and_report_of_an_index(make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=5, projects=1, index_share=0.5, chart_share=0.0, scanned_share=1.0)
    with kit.client(sim) as c:
        index = kit.find(sim, c, lambda a: bool(a["references"]))
        project = index["repository_name"].split("/")[0]
        merged = kit.overview(index)
        children = [c.get(kit.art_path(project, index["repository_name"], r["child_digest"]),
                          params={"with_scan_overview": "true"}).json()
                    for r in index["references"]]
        report = c.get(kit.art_path(project, index["repository_name"], index["digest"])
                       + "/additions/vulnerabilities").json()[kit.MIME]
    parts = [kit.overview(child) for child in children]
    assert len(children) >= 2
    assert merged["summary"]["total"] == sum(p["summary"]["total"] for p in parts)
    import base64
    assert base64.b64decode(merged["report_id"]).decode() == "|".join(p["report_id"] for p in parts)
    shared = [v for v in report["vulnerabilities"] if len(v["artifact_digests"]) > 1]
    assert shared, "the same (id, package, version) in several children is merged"
    assert {d for v in report["vulnerabilities"] for d in v["artifact_digests"]} == \
        {child["digest"] for child in children}


def test_it_makes_everything_unscannable_while_the_adapter_is_down(sim: Any, kit: Any) -> None:
    sim.control.set_adapter(False)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        project = art["repository_name"].split("/")[0]
        trigger = c.post(kit.art_path(project, art["repository_name"], art["digest"]) + "/scan")
        scanner = c.get(f"/projects/{project}/scanner").json()
        health = c.get("/health").json()
    assert "vulnerabilities" not in (art["addition_links"] or {})
    assert "scan_overview" not in art
    assert trigger.status_code == 400
    assert scanner["health"] == "unhealthy"
    assert health["status"] == "unhealthy"
    assert {"name": "trivy", "status": "unhealthy"}.items() <= next(
        x for x in health["components"] if x["name"] == "trivy").items()


@pytest.mark.parametrize("kind", ["CHART", "CNAB"], ids=["chart", "cnab"])
def test_it_refuses_to_scan_charts_and_bundles(sim: Any, kit: Any, kind: str) -> None:
    with kit.client(sim) as c:
        art = kit.find(sim, c, lambda a: a["type"] == kind)
        project = art["repository_name"].split("/")[0]
        response = c.post(kit.art_path(project, art["repository_name"], art["digest"]) + "/scan")
    assert "vulnerabilities" not in (art["addition_links"] or {})
    assert response.status_code == 400


def test_it_answers_412_without_a_usable_scanner(sim: Any, kit: Any) -> None:
    sim.control.set_scanner(disabled=True)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        project = art["repository_name"].split("/")[0]
        response = c.post(kit.art_path(project, art["repository_name"], art["digest"]) + "/scan")
    assert response.status_code == 412


def test_it_stops_a_scan_and_requires_a_body_to_stop(make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=2, projects=1, scanned_share=0.0, scan_seconds=30)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        path = kit.art_path(art["repository_name"].split("/")[0], art["repository_name"],
                            art["digest"])
        never = c.post(path + "/scan/stop", json={"scan_type": "vulnerability"})
        assert c.post(path + "/scan").status_code == 202
        no_body = c.post(path + "/scan/stop")
        stopped = c.post(path + "/scan/stop", json={"scan_type": "vulnerability"})
        status = kit.overview(c.get(path, params={"with_scan_overview": "true"}).json())
    assert (never.status_code, no_body.status_code, stopped.status_code) == (400, 422, 202)
    assert status["scan_status"] == "Stopped"


def test_it_ends_a_share_of_scans_in_error_with_a_log(make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=2, projects=1, scanned_share=0.0, error_share=1.0, scan_seconds=0.05)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        path = kit.art_path(art["repository_name"].split("/")[0], art["repository_name"],
                            art["digest"])
        c.post(path + "/scan")
        final = kit.wait_for(lambda: (s := kit.overview(c.get(
            path, params={"with_scan_overview": "true"}).json())) and
            s["scan_status"] == "Error" and s)
        log = c.get(path + f"/scan/{final['report_id']}/log")
    assert "summary" not in final
    assert log.status_code == 200 and "[ERROR]" in log.text


@pytest.mark.parametrize(("params", "status"), [
    ({"page_size": "101"}, 422), ({"page_size": "100"}, 200), ({"with_tag": "maybe"}, 422),
    ({"q": "tags"}, 400)], ids=["page_size-101", "page_size-100", "bad-boolean", "bad-q"])
def test_it_validates_list_parameters(sim: Any, kit: Any, params: dict[str, str],
                                      status: int) -> None:
    project = next(iter(sim.robots))
    with kit.client(sim) as c:
        assert c.get(f"/projects/{project}/artifacts", params=params).status_code == status


def test_it_pages_with_total_count_and_links(sim: Any, kit: Any) -> None:
    project = next(iter(sim.robots))
    with kit.client(sim) as c:
        first = c.get(f"/projects/{project}/artifacts", params={"page_size": "2"})
        total = int(first.headers["X-Total-Count"])
        pages = [c.get(f"/projects/{project}/artifacts",
                       params={"page_size": "2", "page": str(n)}).json()
                 for n in range(1, total // 2 + 2)]
    assert 'rel="next"' in first.headers["Link"]
    assert len({a["digest"] for page in pages for a in page}) == total


@pytest.mark.parametrize(("q", "check"), [
    ("tags=*", lambda a: bool(a["tags"])), ("tags=nil", lambda a: not a["tags"]),
    ("type=CHART", lambda a: a["type"] == "CHART")], ids=["tagged", "untagged", "type"])
def test_it_filters_artifacts_with_q(sim: Any, kit: Any, q: str, check: Any) -> None:
    with kit.client(sim) as c:
        everything = [a for p in sim.robots for a in kit.all_artifacts(c, p)]
        chosen = [a for p in sim.robots for a in kit.all_artifacts(c, p, q)]
    assert all(check(a) for a in chosen)
    assert len(chosen) == sum(1 for a in everything if check(a))


@pytest.mark.parametrize(("who", "status"), [
    ("robot-own", 200), ("robot-other", 403), ("bad-password", 401), ("anonymous", 401)],
    ids=["robot-own", "robot-other", "bad-password", "anonymous"])
def test_it_authenticates_and_scopes_robots(sim: Any, kit: Any, who: str, status: int) -> None:
    own, other = list(sim.robots)[:2]
    auth = {"robot-own": sim.robots[own], "robot-other": sim.robots[own],
            "bad-password": ("admin", "wrong"), "anonymous": None}[who]
    target = other if who == "robot-other" else own
    with httpx.Client(base_url=sim.url + "/api/v2.0", auth=auth, cookies=kit.no_cookies()) as c:
        assert c.get(f"/projects/{target}/artifacts").status_code == status


def test_it_serves_project_artifacts_only_from_v2_12(make_sim: Any, kit: Any) -> None:
    old = make_sim(projects=1, harbor_version="v2.11.2")
    with kit.client(old) as c:
        project = next(iter(old.robots))
        assert c.get(f"/projects/{project}/artifacts").status_code == 404
        assert c.get("/systeminfo").json()["harbor_version"].startswith("v2.11.2")


def test_it_emits_harbors_nulls_and_quirks(make_sim: Any, kit: Any) -> None:
    sim = make_sim(seed=4, projects=2, scanned_share=1.0, index_share=0.0, chart_share=0.0)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        project = art["repository_name"].split("/")[0]
        report = c.get(kit.art_path(project, art["repository_name"], art["digest"])
                       + "/additions/vulnerabilities").json()[kit.MIME]
        detail = c.get(f"/projects/{project}").json()
    assert art["labels"] is None and art["references"] is None
    assert art["push_time"].endswith("Z") and len(art["push_time"]) == 24
    assert set(detail["metadata"].values()) <= {"true", "false", "low"}
    assert report["vulnerabilities"]
    assert all(v["links"] and v["cwe_ids"] for v in report["vulnerabilities"])


def test_it_fills_report_quirks_across_the_inventory(make_sim: Any) -> None:
    from daemon.sim import render

    sim = make_sim(seed=4, projects=3, scanned_share=1.0)
    with sim.state.lock:
        items = [render.item(i, ["d"], True) for a in sim.state.inventory.all_artifacts()
                 if a.scan and a.scan.items for i in a.scan.items]
    assert any(i["cwe_ids"] == [""] for i in items)
    assert any(i["preferred_cvss"] and i["preferred_cvss"]["score_v3"] == 0 for i in items)
    assert any(i["preferred_cvss"] is None and i["vendor_attributes"] is None for i in items)
    assert any(i["fix_version"] == "" for i in items) and any(i["fix_version"] for i in items)


def test_it_gives_an_empty_report_an_empty_severity(make_sim: Any, kit: Any) -> None:
    sim = make_sim(projects=1, vulnerabilities_per_artifact=0, scanned_share=1.0,
                   index_share=0.0, chart_share=0.0)
    with kit.client(sim) as c:
        art = _image(sim, kit, c)
        project = art["repository_name"].split("/")[0]
        report = c.get(kit.art_path(project, art["repository_name"], art["digest"])
                       + "/additions/vulnerabilities").json()[kit.MIME]
    assert report["severity"] == "" and report["vulnerabilities"] == []
    assert kit.overview(art)["severity"] == "None"
    assert kit.overview(art)["summary"] == {"total": 0, "fixable": 0, "summary": {}}


def test_it_is_deterministic_for_a_seed(make_sim: Any, kit: Any) -> None:
    def snapshot(sim: Any) -> list[Any]:
        with kit.client(sim) as c:
            return [(a["digest"], a["tags"] and [t["name"] for t in a["tags"]],
                     (kit.overview(a) or {}).get("summary"))
                    for p in sim.robots for a in kit.all_artifacts(c, p)]

    assert snapshot(make_sim(seed=11)) == snapshot(make_sim(seed=11))
    assert snapshot(make_sim(seed=11)) != snapshot(make_sim(seed=12))


def test_it_serves_ten_thousand_artifacts(make_sim: Any, kit: Any) -> None:
    sim = make_sim(projects=10, repositories_per_project=20, artifacts_per_repository=50)
    assert sim.control.inventory()["artifacts"] == 10_000
    with kit.client(sim) as c:
        page = c.get(f"/projects/{next(iter(sim.robots))}/artifacts",
                     params={"page_size": "100", "with_scan_overview": "true"})
    assert page.status_code == 200 and len(page.json()) == 100


def test_it_converts_real_trivy_reports(make_sim: Any, kit: Any, trivy_fixtures: Any) -> None:
    import json

    sim = make_sim(projects=2, trivy_reports=str(trivy_fixtures), scanned_share=1.0,
                   index_share=0.0, chart_share=0.0)
    raw = json.loads((trivy_fixtures / "debian-buster.json.golden").read_text())
    wanted = {(v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"]): v
              for r in raw["Results"] for v in r.get("Vulnerabilities") or ()}
    found: dict[Any, Any] = {}
    with kit.client(sim) as c:
        for p in sim.robots:
            for a in kit.all_artifacts(c, p):
                if a["type"] != "IMAGE":
                    continue
                report = c.get(kit.art_path(p, a["repository_name"], a["digest"])
                               + "/additions/vulnerabilities").json().get(kit.MIME, {})
                for v in report.get("vulnerabilities", []):
                    found[(v["id"], v["package"], v["version"])] = v
    assert set(wanted) <= set(found)
    for key, source in wanted.items():
        item = found[key]
        assert item["severity"] == source["Severity"].capitalize()
        assert item["fix_version"] == source.get("FixedVersion", "")
        assert item["links"] == [source["PrimaryURL"]]
        assert item["description"] == source["Description"]
        assert item["vendor_attributes"] == {"CVSS": source["CVSS"]}
        assert item["status"] == source["Status"]


@pytest.mark.parametrize("kind", ["500", "502", "503"], ids=["500", "502", "503"])
def test_it_injects_server_errors(sim: Any, kit: Any, kind: str) -> None:
    sim.control.set_faults([FaultRule(kind, path="/api/v2.0/projects")])
    with kit.client(sim) as c:
        assert c.get("/projects").status_code == int(kind)
        assert c.get("/systeminfo").status_code == 200


@pytest.mark.parametrize("as_date", [False, True], ids=["seconds", "http-date"])
def test_it_injects_429_with_retry_after(sim: Any, kit: Any, as_date: bool) -> None:
    import email.utils

    sim.control.set_faults([FaultRule("429", retry_after=3, retry_after_date=as_date)])
    with kit.client(sim) as c:
        response = c.get("/projects")
    assert response.status_code == 429
    value = response.headers["Retry-After"]
    assert (email.utils.parsedate_to_datetime(value) is not None) if as_date else value == "3"


@pytest.mark.parametrize("kind", ["reset", "truncated"], ids=["reset", "truncated"])
def test_it_breaks_connections(sim: Any, kit: Any, kind: str) -> None:
    sim.control.set_faults([FaultRule(kind)])
    with kit.client(sim) as c, pytest.raises(httpx.TransportError):
        c.get("/projects", params={"page_size": "100"})


def test_it_sends_malformed_json(sim: Any, kit: Any) -> None:
    import json

    sim.control.set_faults([FaultRule("malformed")])
    with kit.client(sim) as c:
        response = c.get("/projects")
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_it_answers_slowly_then_correctly(sim: Any, kit: Any) -> None:
    sim.control.set_faults([FaultRule("slow", delay=0.05)])
    with kit.client(sim) as c:
        assert c.get("/projects").status_code == 200
    assert sim.control.stats()["status"] == {"200": 1}


def test_it_applies_a_fault_rate(make_sim: Any, kit: Any) -> None:
    sim = make_sim(projects=1, faults=(FaultRule("503", rate=0.5),))
    with kit.client(sim) as c:
        codes = [c.get("/systeminfo").status_code for _ in range(60)]
    assert 0 < codes.count(503) < 60
