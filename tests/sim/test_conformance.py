"""Every endpoint the simulator serves returns bodies that validate against Harbor's swagger.yaml.

Swagger 2.0 schemas are JSON Schema draft 4 plus ``x-nullable``. Harbor's Go models emit ``null``
for nil slices, maps and pointers, so any property of array, object or ``$ref`` type may be
``null`` here; ``extra_attrs`` holds whatever the image config holds (the spec's "map of objects"
does not describe ``"architecture": "amd64"``). Where Harbor's code deviates from its own spec, the
case below says so and follows the code (API-NOTES §7, §8, §10).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

ART = "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}"


def _nullable(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k == "properties" else _nullable(v)) for k, v in schema.items()}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {n: _nullable(p) for n, p in out["properties"].items()}
    for name, prop in list((out.get("properties") or {}).items()):
        if "$ref" in prop:
            out["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
        elif prop.get("type") in ("array", "object") or prop.get("x-nullable"):
            out["properties"][name] = {**prop, "type": [prop.get("type", "object"), "null"]}
    return out


@pytest.fixture(scope="module")
def spec(swagger_path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(swagger_path.read_text())
    definitions = _nullable(copy.deepcopy(loaded["definitions"]))
    definitions["Artifact"]["properties"]["extra_attrs"] = {}
    loaded["_definitions"] = definitions
    return dict(loaded)


def _schema(spec: dict[str, Any], template: str, method: str, code: int) -> dict[str, Any] | None:
    responses = spec["paths"][template][method.lower()]["responses"]
    response = responses.get(str(code))
    if response is None:
        return None
    if "$ref" in response:
        response = spec["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response.get("schema")


def _headers(spec: dict[str, Any], template: str, method: str, code: int) -> dict[str, Any]:
    response = spec["paths"][template][method.lower()]["responses"].get(str(code)) or {}
    return dict(response.get("headers") or {})


def _validate(spec: dict[str, Any], body: Any, schema: dict[str, Any]) -> None:
    root = {**schema, "definitions": spec["_definitions"]}
    jsonschema.Draft4Validator(root).validate(body)


def _errors(spec: dict[str, Any]) -> dict[str, Any]:
    return {"$ref": "#/definitions/Errors"}


@pytest.fixture(scope="module")
def world(make_sim_module: Any) -> Any:
    return make_sim_module


@pytest.fixture(scope="module")
def make_sim_module() -> Any:
    from daemon.sim import SimOptions, start_simulator

    sim = start_simulator(SimOptions(seed=21, projects=2, repositories_per_project=3,
                                     artifacts_per_repository=3, index_share=0.2, chart_share=0.1,
                                     cnab_share=0.05, scanned_share=1.0, scan_seconds=30))
    zero = start_simulator(SimOptions(seed=22, projects=1, vulnerabilities_per_artifact=0,
                                      scanned_share=1.0, index_share=0.0, chart_share=0.0))
    yield sim, zero
    sim.stop()
    zero.stop()


def _calls(sim: Any, zero: Any, kit: Any) -> list[tuple[str, str, str, int, Any, str]]:
    """(template, method, url, expected status, json body or None, note) for every endpoint."""
    c = kit.client(sim)
    project = next(iter(sim.robots))
    arts = [a for p in sim.robots for a in kit.all_artifacts(c, p)]
    image = next(a for a in arts if a["type"] == "IMAGE" and not a["references"])
    index = next(a for a in arts if a["references"])
    chart = next(a for a in arts if a["type"] == "CHART")
    cnab = next(a for a in arts if a["type"] == "CNAB")
    repo_of = image["repository_name"]
    p_of = repo_of.split("/")[0]
    short = kit.enc(repo_of.split("/", 1)[1])
    path = kit.art_path(p_of, repo_of, image["digest"])
    zc = kit.client(zero)
    zimage = next(a for p in zero.robots for a in kit.all_artifacts(zc, p) if a["type"] == "IMAGE")
    zpath = kit.art_path(next(iter(zero.robots)), zimage["repository_name"], zimage["digest"])
    scanner = c.get("/scanners").json()[0]["uuid"]
    report_id = kit.overview(image)["report_id"]
    R = "/projects/{project_name}/repositories"
    return [
        ("/health", "GET", "/health", 200, None, ""),
        ("/systeminfo", "GET", "/systeminfo", 200, None, ""),
        ("/users/current", "GET", "/users/current", 200, None, ""),
        ("/projects", "GET", "/projects", 200, None, ""),
        ("/projects/{project_name_or_id}", "GET", f"/projects/{project}", 200, None, ""),
        ("/projects/{project_name_or_id}", "GET", "/projects/nope", 404, None, ""),
        ("/projects/{project_name_or_id}/scanner", "GET", f"/projects/{project}/scanner", 200,
         None, ""),
        (R, "GET", f"/projects/{p_of}/repositories", 200, None, ""),
        ("/repositories", "GET", "/repositories?page_size=2", 200, None, ""),
        ("/repositories", "GET", "/repositories?q=name%3D~app&sort=-name", 200, None, ""),
        ("/repositories", "GET", "/repositories?page_size=101", 422, None, ""),
        (R + "/{repository_name}", "GET", f"/projects/{p_of}/repositories/{short}", 200, None, ""),
        (R + "/{repository_name}/artifacts", "GET",
         f"/projects/{p_of}/repositories/{short}/artifacts?with_scan_overview=true", 200, None, ""),
        (R + "/{repository_name}/artifacts", "GET",
         f"/projects/{p_of}/repositories/{short}/artifacts?page_size=101", 422, None, ""),
        (R + "/{repository_name}/artifacts", "GET",
         f"/projects/{p_of}/repositories/no-such-repository/artifacts", 200, None,
         "a repository that does not exist lists nothing (artifact.go ListArtifacts)"),
        ("/projects/{project_name_or_id}/artifacts", "GET",
         f"/projects/{project}/artifacts?with_scan_overview=true&page_size=100", 200, None, ""),
        (ART, "GET", path + "?with_scan_overview=true", 200, None, "image"),
        (ART, "GET", kit.art_path(index["repository_name"].split("/")[0], index["repository_name"],
                                  index["digest"]) + "?with_scan_overview=true", 200, None,
         "index"),
        (ART, "GET", kit.art_path(chart["repository_name"].split("/")[0], chart["repository_name"],
                                  chart["digest"]), 200, None, "chart"),
        (ART, "GET", kit.art_path(cnab["repository_name"].split("/")[0], cnab["repository_name"],
                                  cnab["digest"]), 200, None, "cnab"),
        (ART, "GET", kit.art_path(p_of, repo_of, "no-such-tag"), 404, None, ""),
        (ART + "/scan", "POST", kit.art_path(chart["repository_name"].split("/")[0],
                                             chart["repository_name"], chart["digest"]) + "/scan",
         400, None, "Harbor's code answers 400 where the spec says 422 for unsupported"),
        (ART + "/scan", "POST", kit.art_path(p_of, repo_of, "no-such-tag") + "/scan", 404, None,
         ""),
        (ART + "/scan/{report_id}/log", "GET", path + f"/scan/{report_id}/log", 200, None, "text"),
        (ART + "/additions/vulnerabilities", "GET", path + "/additions/vulnerabilities", 200, None,
         "report"),
        (ART + "/additions/vulnerabilities", "GET", zpath + "/additions/vulnerabilities", 200,
         None, "zero-report"),
        (ART + "/scan", "POST", path + "/scan", 202, None, "empty"),
        (ART + "/scan", "POST", path + "/scan", 409, None,
         "409 is not in the spec; Harbor's code sends an Errors body"),
        (ART + "/additions/vulnerabilities", "GET", path + "/additions/vulnerabilities", 200,
         None, "empty-while-scanning"),
        (ART + "/scan/stop", "POST", path + "/scan/stop", 422, None,
         "body required since v2.11 (go-openapi validation)"),
        (ART + "/scan/stop", "POST", path + "/scan/stop", 202, {"scan_type": "vulnerability"},
         "empty"),
        (ART, "DELETE", kit.art_path(chart["repository_name"].split("/")[0],
                                     chart["repository_name"], chart["digest"]), 200, None,
         "empty"),
        ("/scanners", "GET", "/scanners", 200, None, ""),
        ("/scanners/{registration_id}", "GET", f"/scanners/{scanner}", 200, None, ""),
        ("/scanners/{registration_id}/metadata", "GET", f"/scanners/{scanner}/metadata", 200,
         None, ""),
        ("/system/CVEAllowlist", "GET", "/system/CVEAllowlist", 200, None, ""),
        ("/scans/all/metrics", "GET", "/scans/all/metrics", 200, None, ""),
        ("/system/scanAll/schedule", "POST", "/system/scanAll/schedule", 201,
         {"schedule": {"type": "Manual"}}, "empty"),
        ("/scans/all/metrics", "GET", "/scans/all/metrics", 200, None, ""),
        ("/system/scanAll/schedule", "POST", "/system/scanAll/schedule", 409,
         {"schedule": {"type": "Manual"}}, "a manual scan-all still going"),
        ("/system/scanAll/schedule", "POST", "/system/scanAll/schedule", 201,
         {"schedule": {"type": "Daily", "cron": "0 0 0 * * *"}}, "empty"),
        ("/system/scanAll/schedule", "GET", "/system/scanAll/schedule", 200, None, ""),
    ]


def test_it_serves_bodies_that_validate_against_the_spec(world: Any, spec: dict[str, Any],
                                                         kit: Any) -> None:
    sim, zero = world
    checked = 0
    with kit.client(sim) as c, kit.client(zero) as zc:
        for template, method, url, status, body, note in _calls(sim, zero, kit):
            client = zc if note == "zero-report" else c
            response = client.request(method, url, json=body)
            assert response.status_code == status, (method, url, response.text)
            if note in ("empty", "text"):
                assert response.content == b"" if note == "empty" else response.text
                continue
            data = response.json()
            if note in ("report", "zero-report", "empty-while-scanning"):
                # The spec types this addition as a string; Harbor sends a JSON object keyed by
                # the report's mime type (API-NOTES §10).
                if note == "empty-while-scanning":
                    assert data == {}
                else:
                    report = data[kit.MIME]
                    assert set(report) == {"generated_at", "scanner", "severity",
                                           "vulnerabilities"}
                    if note == "zero-report":
                        assert report["severity"] == "" and report["vulnerabilities"] == []
                continue
            schema = _schema(spec, template, method, status)
            if "X-Total-Count" in _headers(spec, template, method, status):
                assert int(response.headers["X-Total-Count"]) >= len(data), url
            if schema is None:  # 409/412 and friends: not in the spec, Errors in Harbor's code
                schema = _errors(spec)
            _validate(spec, data, schema)
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize(("auth", "status"), [(("admin", "wrong"), 401), ("robot", 403)],
                         ids=["401", "403"])
def test_it_answers_auth_errors_in_the_spec_shape(world: Any, spec: dict[str, Any], kit: Any,
                                                  auth: Any, status: int) -> None:
    sim, _ = world
    own, other = list(sim.robots)[:2]
    credentials = sim.robots[own] if auth == "robot" else auth
    with httpx.Client(base_url=sim.url + "/api/v2.0", auth=credentials,
                      headers={"X-Is-Resource-Name": "true"}) as c:
        response = c.get(f"/projects/{other}")
    assert response.status_code == status
    _validate(spec, response.json(), _errors(spec))


def test_it_answers_anonymous_callers_in_the_spec_shape(world: Any, spec: dict[str, Any]) -> None:
    """What a failed login gets (Harbor treats it as anonymous): 200s and 401s, all in shape."""
    sim, _ = world
    with httpx.Client(base_url=sim.url + "/api/v2.0") as c:
        info, projects = c.get("/systeminfo"), c.get("/projects")
        refused = [c.get(p) for p in ("/scanners", "/users/current",
                                      f"/projects/{next(iter(sim.robots))}/artifacts")]
    assert "harbor_version" not in info.json()
    _validate(spec, info.json(), _schema(spec, "/systeminfo", "GET", 200) or {})
    _validate(spec, projects.json(), _schema(spec, "/projects", "GET", 200) or {})
    assert [r.status_code for r in refused] == [401, 401, 401]
    for response in refused:
        _validate(spec, response.json(), _errors(spec))


def test_it_answers_412_with_an_errors_body(make_sim: Any, spec: dict[str, Any], kit: Any) -> None:
    sim = make_sim(projects=1, index_share=0.0, chart_share=0.0)
    sim.control.set_scanner(registered=False)
    with kit.client(sim) as c:
        project = next(iter(sim.robots))
        image = next(a for a in kit.all_artifacts(c, project) if a["type"] == "IMAGE")
        response = c.post(kit.art_path(project, image["repository_name"], image["digest"])
                          + "/scan")
        scanner = c.get(f"/projects/{project}/scanner")
    assert response.status_code == 412  # not in the spec; Harbor's code (API-NOTES §7)
    _validate(spec, response.json(), _errors(spec))
    assert scanner.status_code == 200 and scanner.json() is None


@pytest.mark.parametrize("body", [{"errors": "x"}, {"errors": [{"code": 404}]}],
                         ids=["not-a-list", "code-not-a-string"])
def test_its_validator_rejects_wrong_bodies(spec: dict[str, Any], body: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validate(spec, body, _errors(spec))
