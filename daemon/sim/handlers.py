"""Harbor's v2.0 endpoints, each a function of a :class:`Request` returning a :class:`Response`."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote

from daemon.sim import render, repositories
from daemon.sim.api import TRUE, ApiError, Request, Response, dumps, json_response, matches
from daemon.sim.engine import ScanError
from daemon.sim.inventory import Artifact, Project, Repository
from daemon.sim.state import SCANNER_UUID

REPO = "/projects/{project_name}/repositories/{repository_name}"
ART = REPO + "/artifacts/{reference}"
COMPONENTS = ("core", "portal", "jobservice", "registry", "registryctl", "database", "redis")


def ping(req: Request) -> Response:
    return Response(200, b"Pong", "text/plain")


def health(req: Request) -> Response:
    up = req.state.engine.adapter_up
    components: list[dict[str, Any]] = [{"name": n, "status": "healthy"} for n in COMPONENTS]
    trivy: dict[str, Any] = {"name": "trivy", "status": "healthy" if up else "unhealthy"}
    if not up:
        trivy["error"] = "failed to check health: Get " \
                         "\"http://trivy-adapter:8080/probe/healthy\": " \
                         "dial tcp: connect: connection refused"
    components.append(trivy)
    return json_response({"status": "healthy" if up else "unhealthy", "components": components})


def systeminfo(req: Request) -> Response:
    # An anonymous caller (a failed login is one) gets no protected fields: no harbor_version.
    body: dict[str, Any] = {"auth_mode": "db_auth", "primary_auth_mode": False,
                            "self_registration": False, "banner_message": "",
                            "oidc_provider_name": ""}
    if req.principal is not None:
        body.update({"harbor_version": f"{req.state.options.harbor_version}-f1c4e8a2",
                     "has_ca_root": False, "external_url": "https://harbor.example.test",
                     "registry_url": "harbor.example.test", "read_only": False,
                     "notification_enable": True, "project_creation_restriction": "everyone",
                     "registry_storage_provider_name": "filesystem",
                     "current_time": render.ts(req.state.wall())})
    return json_response(body)


def current_user(req: Request) -> Response:
    principal = req.require_auth()
    if principal != "admin":
        raise ApiError(412, "PRECONDITION", "get current user not available for security "
                       "context: robot")
    created = render.ts(req.state.inventory.started - 60 * 86400)
    return json_response({"user_id": 1, "username": "admin", "email": "admin@example.com",
                          "realname": "system admin", "comment": "admin user",
                          "sysadmin_flag": True, "admin_role_in_auth": False,
                          "creation_time": created, "update_time": created})


# ---- projects and repositories ------------------------------------------------------------------
def list_projects(req: Request) -> Response:
    # project.go ListProjects: anonymous callers see public projects only, a robot its own
    # projects and the public ones, admin all.
    projects = [p for p in req.state.inventory.projects if req.can_read(p)]
    public = req.query.get("public")
    if public:
        projects = [p for p in projects if p.public == (public in TRUE)]
    name = req.query.get("name")
    if name:
        projects = [p for p in projects if name in p.name]
    for key, op, want in req.q():
        field = {"name": lambda p: p.name, "project_id": lambda p: p.id}.get(key)
        if field is not None:
            projects = [p for p in projects if matches(op, want, field(p))]
    chosen, headers = req.paginate(projects)
    return Response(200, dumps([render.project(p) for p in chosen]), headers=headers)


def head_project(req: Request) -> Response:
    """project.go HeadProject: whether the name exists, for any authenticated caller."""
    req.require_auth()
    name = req.query.get("project_name") or ""
    if not name:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "validation failure list:\n"
                       "project_name in query is required")
    if req.state.inventory.project(name, by_id=False) is None:
        raise ApiError(404, "NOT_FOUND", f"project {name} not found")
    return Response(200, b"")


def get_project(req: Request) -> Response:
    return json_response(render.project(req.project()))


def project_scanner(req: Request) -> Response:
    req.project()
    if not req.state.scanner_registered:
        return Response(200, b"null")
    return json_response(registration(req, with_health=True))


def _repo(req: Request) -> tuple[Project, Repository]:
    project = req.project("project_name", by_name=True)
    short = unquote(req.params["repository_name"])  # Harbor's second decoding
    repo = req.state.inventory.repository(project, short)
    if repo is None:
        raise ApiError(404, "NOT_FOUND", f"repository {project.name}/{short} not found")
    return project, repo


def get_repository(req: Request) -> Response:
    return json_response(render.repository(_repo(req)[1]))


def _artifact(req: Request) -> Artifact:
    project, repo = _repo(req)
    reference = req.params["reference"]
    art = req.state.inventory.artifact(repo, reference)
    if art is None:
        raise ApiError(404, "NOT_FOUND", f"artifact {repo.name}:{reference} not found")
    return art


# ---- artifacts ----------------------------------------------------------------------------------
def _filter(req: Request, arts: list[Artifact]) -> list[Artifact]:
    terms = req.q()
    if not any(k == "base" and w == "*" for k, _, w in terms):
        arts = [a for a in arts if a.top_level]
    for key, op, want in terms:
        if key == "tags":
            if op == "exact" and want == "*":
                arts = [a for a in arts if a.tags]
            elif op == "exact" and want == "nil":
                arts = [a for a in arts if not a.tags]
            else:
                arts = [a for a in arts if a.tags and matches(op, want, [t.name for t in a.tags])]
        elif key in ("digest", "type", "media_type", "manifest_media_type", "repository_name"):
            arts = [a for a in arts if matches(op, want, _field(a, key))]
        elif key == "push_time":
            arts = [a for a in arts if matches(op, want, int(a.push_time))]
        elif key == "labels":
            arts = []  # nothing carries labels here
    return sorted(arts, key=lambda a: (-a.push_time, -a.id))


def _field(art: Artifact, key: str) -> str:
    return art.repo.name if key == "repository_name" else str(getattr(art, key))


def _render_page(req: Request, arts: Any, default_overview: bool) -> bytes:
    state = req.state
    with_tag = req.flag("with_tag", True)
    with_overview = req.flag("with_scan_overview", default_overview)
    mimes = render.accepted_mimes(req.headers.get("X-Accept-Vulnerabilities"))
    cache = state.fragment_cache
    parts = []
    for art in arts:
        key = (art.id, with_tag, with_overview, tuple(mimes))
        cached = cache.get(key)
        if cached is None or cached[0] != art.version:
            body = dumps(render.artifact(art, with_tag=with_tag, with_overview=with_overview,
                                         mimes=mimes, scannable=state.engine.scannable(art),
                                         host=state.registry_host))
            cache[key] = (art.version, body)
            parts.append(body)
        else:
            parts.append(cached[1])
    return b"[" + b",".join(parts) + b"]"


def _cached_list(req: Request, collect: Any) -> Response:
    state = req.state
    key = (req.raw_path, req.raw_query, req.headers.get("X-Accept-Vulnerabilities"))
    hit = state.page_cache.get(key)
    if hit is not None and hit[0] == state.version:
        status, body, headers = hit[1]
        return Response(status, body, headers=list(headers))
    arts = collect()
    chosen, headers = req.paginate(arts)
    body = _render_page(req, chosen, False)
    if len(state.page_cache) > 2000:
        state.page_cache.clear()
    state.page_cache[key] = (state.version, (200, body, tuple(headers)))
    return Response(200, body, headers=headers)


def _listed_repo(req: Request) -> Repository | None:
    """Harbor lists a repository's artifacts by name alone (``RepositoryName = p/r``, artifact.go
    ``ListArtifacts``): where the project or repository does not exist the list is empty, 200
    ``[]`` with ``X-Total-Count: 0``, never 404. A robot still gets 403 outside its project."""
    try:
        project = req.project("project_name", by_name=True)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None
    return req.state.inventory.repository(project, unquote(req.params["repository_name"]))


def list_artifacts(req: Request) -> Response:
    with req.state.lock:
        repo = _listed_repo(req)
        return _cached_list(req, lambda: _filter(req, list(repo.artifacts)) if repo else [])


def list_project_artifacts(req: Request) -> Response:
    with req.state.lock:
        project = req.project()

        def collect() -> list[Artifact]:
            arts = _filter(req, [a for r in project.repositories for a in r.artifacts])
            if req.flag("latest_in_repository", False):
                seen: set[int] = set()
                arts = [a for a in arts if not (a.repo.id in seen or seen.add(a.repo.id))]  # type: ignore[func-returns-value]
            return arts

        return _cached_list(req, collect)


def get_artifact(req: Request) -> Response:
    with req.state.lock:
        art = _artifact(req)
        return Response(200, _render_page(req, [art], False)[1:-1])


# ---- scanning -----------------------------------------------------------------------------------
def _scan_type(req: Request, required: bool) -> None:
    if not req.body.strip():
        if required:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "scanType in body is required")
        return
    try:
        body = json.loads(req.body)
    except ValueError:
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "parsing scanType body failed: "
                       "invalid JSON") from None
    kind = body.get("scan_type", "vulnerability") if isinstance(body, dict) else None
    if kind not in ("vulnerability", "sbom"):
        raise ApiError(422, "UNPROCESSABLE_ENTITY", "validation failure list:\nscan_type in body "
                       "should be one of [vulnerability sbom]")
    if kind == "sbom":
        raise ApiError(400, "BAD_REQUEST", "the configured scanner Trivy does not support "
                       "generating SBOM")


def _precondition(req: Request) -> None:
    if not req.state.scanner_registered:
        raise ApiError(412, "PRECONDITION", "no available scanner for project")
    if req.state.scanner_disabled:
        raise ApiError(412, "PRECONDITION", "scanner Trivy is disabled")


def scan(req: Request) -> Response:
    req.require_auth()  # scan:create is never granted to anonymous callers, public or not
    with req.state.lock:
        art = _artifact(req)
        _scan_type(req, required=False)
        _precondition(req)
        try:
            req.state.engine.trigger(art)
        except ScanError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        return Response(202, b"")


def stop_scan(req: Request) -> Response:
    req.require_auth()
    with req.state.lock:
        art = _artifact(req)
        _scan_type(req, required=req.state.options.version_tuple() >= (2, 11))
        try:
            req.state.engine.stop_scan(art)
        except ScanError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        return Response(202, b"")


def delete_artifact(req: Request) -> Response:
    """artifact.go DeleteArtifact: project admins (here: admin) only; 412 while an index
    references it."""
    req.require_auth()
    with req.state.lock:
        art = _artifact(req)
        if req.principal != "admin":
            raise ApiError(403, "FORBIDDEN", "forbidden")
        if art.parents:
            raise ApiError(412, "VIOLATE_FOREIGN_KEY_CONSTRAINT",
                           "the deleting artifact is referenced by others")
        req.state.inventory.delete(art)
        req.state.bump()
        return Response(200, b"")


def scan_log(req: Request) -> Response:
    with req.state.lock:
        art = _artifact(req)
        wanted = req.params["report_id"]
        scans = [c.scan for c in (art.children or [art]) if c.scan is not None]
        if art.children:
            merged = base64.b64encode("|".join(s.report_id for s in scans).encode()).decode()
            if wanted == merged and scans:
                text = "".join(f"---------- Logs of report {s.report_id} ----------\n"
                               + "\n".join(s.log) + "\n" for s in scans)
                return Response(200, text.encode(), "text/plain")
        for s in scans:
            if s.report_id == wanted and s.log:
                return Response(200, ("\n".join(s.log) + "\n").encode(), "text/plain")
        raise ApiError(404, "NOT_FOUND", f"report with uuid {wanted} does not exist")


def vulnerabilities(req: Request) -> Response:
    with req.state.lock:
        art = _artifact(req)
        if not req.state.engine.scannable(art):
            raise ApiError(404, "NOT_FOUND", f"report not found for {art.repo.name}@{art.digest}")
        mimes = render.accepted_mimes(req.headers.get("X-Accept-Vulnerabilities"))
        req.state.fetches += 1
        found = render.report(art, with_status=req.state.options.version_tuple() >= (2, 14),
                              order_seed=req.state.fetches) if render.MIME_11 in mimes else None
        return json_response({} if found is None else {render.MIME_11: found})


def addition(req: Request) -> Response:
    """``additions/{addition}``: an image's ``build_history`` (its config's history, as
    ``manifest_v2.go`` marshals it); any other addition of an image is 400, as in Harbor."""
    with req.state.lock:
        art = _artifact(req)
        kind = req.params["addition"]
        if kind != "build_history" or art.type != "IMAGE" or art.children:
            raise ApiError(400, "BAD_REQUEST",
                           f"addition {kind} isn't supported for {art.type}(manifest version 2)")
        return Response(200, dumps(list(art.history)), "application/json; charset=utf-8")


# ---- scanners and allowlists --------------------------------------------------------------------
def registration(req: Request, with_health: bool) -> dict[str, Any]:
    state = req.state
    created = render.ts(state.inventory.started - 40 * 86400)
    body: dict[str, Any] = {
        "uuid": SCANNER_UUID, "name": "Trivy", "description": "The Trivy scanner adapter",
        "url": "http://trivy-adapter:8080", "disabled": state.scanner_disabled, "is_default": True,
        "auth": "", "skip_certVerify": False, "use_internal_addr": True, "create_time": created,
        "update_time": created, "adapter": "Trivy", "vendor": "Aqua Security",
        "version": "v0.50.1", "health": "",
    }
    # From v2.11 on Harbor fills ``capabilities`` from the adapter's metadata (RetrieveCap); it is
    # omitted (omitempty) before v2.11 and whenever the adapter does not answer.
    if state.options.version_tuple() >= (2, 11) and state.engine.adapter_up:
        body["capabilities"] = {"support_vulnerability": True, "support_sbom": True}
    if with_health:
        body["health"] = "healthy" if state.engine.adapter_up else "unhealthy"
    return body


def list_scanners(req: Request) -> Response:
    req.require_admin()
    items = [registration(req, False)] if req.state.scanner_registered else []
    chosen, headers = req.paginate(items)
    return Response(200, dumps(list(chosen)), headers=headers)


def _registration_or_404(req: Request) -> None:
    req.require_admin()
    if req.params["registration_id"] != SCANNER_UUID or not req.state.scanner_registered:
        raise ApiError(404, "NOT_FOUND", f"registration {req.params['registration_id']} not found")


def get_scanner(req: Request) -> Response:
    _registration_or_404(req)
    return json_response(registration(req, False))


def scanner_metadata(req: Request) -> Response:
    _registration_or_404(req)
    state = req.state
    if not state.engine.adapter_up:
        raise ApiError(500, "UNKNOWN", "v1 client: get metadata: Get \"http://trivy-adapter:8080/"
                       "api/v1/metadata\": dial tcp: connect: connection refused")
    consumes = ["application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json"]
    return json_response({
        "scanner": {**render.SCANNER, "version": "v0.50.1"},
        "capabilities": [
            {"type": "vulnerability", "consumes_mime_types": consumes,
             "produces_mime_types": [render.MIME_11]},
            {"type": "sbom", "consumes_mime_types": consumes,
             "produces_mime_types": ["application/vnd.security.sbom.report+json; version=1.0"]}],
        "properties": {
            "harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
            "harbor.scanner-adapter/vulnerability-database-updated-at":
                render.ts_nano(state.db_updated_at),
            "harbor.scanner-adapter/vulnerability-database-next-update-at":
                render.ts_nano(state.db_updated_at + 12 * 3600),
            "org.label-schema.version": "v0.50.1", "env.SCANNER_TRIVY_SKIP_UPDATE": "false",
        }})


def system_allowlist(req: Request) -> Response:
    req.require_auth()
    state = req.state
    return json_response(render.allowlist(0, state.inventory.started - 40 * 86400,
                                          state.system_allowlist,
                                          state.system_allowlist_expires_at))


ROUTES_BASE: list[tuple[str, str, Any]] = [
    ("GET", "/ping", ping), ("GET", "/health", health), ("GET", "/systeminfo", systeminfo),
    ("GET", "/projects", list_projects), ("HEAD", "/projects", head_project),
    ("GET", "/projects/{project_name_or_id}", get_project),
    ("GET", "/projects/{project_name_or_id}/scanner", project_scanner),
    ("GET", "/projects/{project_name}/repositories", repositories.list_repositories),
    ("GET", "/repositories", repositories.list_all_repositories),
    ("GET", REPO, get_repository), ("GET", REPO + "/artifacts", list_artifacts),
    ("GET", ART, get_artifact), ("DELETE", ART, delete_artifact), ("POST", ART + "/scan", scan),
    ("POST", ART + "/scan/stop", stop_scan), ("GET", ART + "/scan/{report_id}/log", scan_log),
    ("GET", ART + "/additions/vulnerabilities", vulnerabilities),
    ("GET", ART + "/additions/{addition}", addition),
    ("GET", "/scanners", list_scanners), ("GET", "/scanners/{registration_id}", get_scanner),
    ("GET", "/scanners/{registration_id}/metadata", scanner_metadata),
    ("GET", "/system/CVEAllowlist", system_allowlist), ("GET", "/users/current", current_user),
]
PROJECT_ARTIFACTS = ("GET", "/projects/{project_name_or_id}/artifacts", list_project_artifacts)
