"""The registry side of Harbor: ``/v2/`` (manifests) behind Docker's token auth, ``/service/token``.

As Harbor's ``v2auth`` middleware does (``src/server/middleware/v2auth/auth.go``):

- a request without ``Authorization`` gets 401 with ``Www-Authenticate: Bearer
  realm="<scheme>://<Host>/service/token",service="harbor-registry",scope="repository:<name>:pull"``
  (no scope for ``/v2/`` itself) and ``Docker-Distribution-Api-Version: registry/2.0``;
- a request *with* an ``Authorization`` header that grants nothing gets 401 with ``Basic
  realm="harbor"``: a bad token, an expired one, or one whose access does not cover the name;
- Basic credentials Harbor accepts are honoured directly too (Harbor builds the security context
  from them), a wrong password goes on anonymous (and locks the name, ``auth.py``).

``/service/token?service=harbor-registry&scope=repository:<name>:pull`` (``scope`` may repeat,
each may hold several space-separated scopes) answers ``{"token", "expires_in", "issued_at"}``
(``src/core/service/token/authutils.go`` ``MakeToken``; 30 minutes by default). An unknown
``service`` is 400; an anonymous request without a scope is 401; otherwise the token is issued
with the access filtered to what the caller may do, so an anonymous or foreign caller gets a
token that opens nothing. A manifest is served by digest or tag with its media type and
``Docker-Content-Digest``; an index's children are served by their digest (each is an artifact
of the repository), and, as distribution's manifest handler does, an OCI manifest or index is
``404 MANIFEST_UNKNOWN`` to a client whose ``Accept`` does not name its media type.

A ``GET`` of a manifest is a pull, as Harbor's ``getManifest`` fires it
(``src/server/registry/manifest.go``): the artifact's pull time, its tag's when asked by tag,
the repository's pull count (``SimState.pulled``); a ``HEAD`` is not, nor a ``GET`` from
Harbor's own replication client (``User-Agent: harbor-registry-client``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from urllib.parse import parse_qs

from daemon.sim import lineage
from daemon.sim.api import Response, dumps
from daemon.sim.auth import Principal, Robot
from daemon.sim.inventory import OCI_INDEX, OCI_MANIFEST, Artifact, Project
from daemon.sim.state import SimState

SERVICE = "harbor-registry"
TOKEN_SECONDS = 1800  # Harbor's token_expiration default: 30 minutes
V2_HEADER = ("Docker-Distribution-Api-Version", "registry/2.0")
# Harbor's own registry client (replication): its GETs are not pulls (registry.UserAgent)
HARBOR_CLIENT = "harbor-registry-client"


def _error(status: int, code: str, message: str, challenge: str = "") -> Response:
    headers = [V2_HEADER]
    if challenge:
        headers.append(("Www-Authenticate", challenge))
    return Response(status, dumps({"errors": [{"code": code, "message": message}]}),
                    headers=headers)


def _can_pull(principal: Principal, project: Project) -> bool:
    if principal == "admin" or project.public:
        return True
    return isinstance(principal, Robot) and principal.project == project.name \
        and project.robot_can_pull


def route_of(method: str, path: str) -> str:
    """The statistics' name of a registry request."""
    if path == "/service/token":
        return f"{method} /service/token"
    if path.rstrip("/") == "/v2":
        return f"{method} /v2/"
    if "/manifests/" in path:
        return f"{method} /v2/{{name}}/manifests/{{reference}}"
    return f"{method} /v2/(unmatched)"


def token(state: SimState, headers: Any, raw_query: str) -> Response:
    query = parse_qs(raw_query, keep_blank_values=True)
    service = (query.get("service") or [""])[0]
    if service != SERVICE:
        return Response(400, f"Unable to handle service: {service}".encode(), "text/plain")
    scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
    with state.lock:
        principal = state.auth.principal(headers.get("Authorization"),
                                         state.inventory.projects)
        if principal is None and not scopes:
            return Response(401, b"", "text/plain")
        granted: set[str] = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            project = state.inventory.project(name.split("/", 1)[0], by_id=False)
            if kind == "repository" and "pull" in actions.split(",") and project is not None \
                    and _can_pull(principal, project):
                granted.add(name)
        now = state.wall()
        value = secrets.token_urlsafe(24)
        state.tokens[value] = (principal, frozenset(granted), now + TOKEN_SECONDS)
    issued = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Response(200, dumps({"token": value, "expires_in": TOKEN_SECONDS,
                                "issued_at": issued}))


def _realm(headers: Any, state: SimState) -> str:
    host = headers.get("Host") or state.registry_host
    return f"http://{host}/service/token"


def _allowed(state: SimState, header: str | None, name: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() == "bearer":
        found = state.tokens.get(value.strip())
        return found is not None and found[2] > state.wall() and name in found[1]
    principal = state.auth.principal(header, state.inventory.projects)
    project = state.inventory.project(name.split("/", 1)[0], by_id=False)
    return principal is not None and project is not None and _can_pull(principal, project)


def v2(state: SimState, method: str, path: str, headers: Any) -> Response:
    header = headers.get("Authorization")
    rest = path[len("/v2"):].strip("/")
    if not rest:  # the API version check ("docker login")
        if not header:
            return _error(401, "UNAUTHORIZED", "unauthorized",
                          f'Bearer realm="{_realm(headers, state)}",service="{SERVICE}"')
        return Response(200, b"{}", headers=[V2_HEADER])
    name, sep, reference = rest.rpartition("/manifests/")
    if not sep or method not in ("GET", "HEAD"):
        return _error(404, "NOT_FOUND", f"path {path} was not found")
    challenge = f'Bearer realm="{_realm(headers, state)}",service="{SERVICE}",' \
                f'scope="repository:{name}:pull"'
    with state.lock:
        if not header:
            return _error(401, "UNAUTHORIZED",
                          "authorize header needed to send HEAD to repository", challenge)
        if not _allowed(state, header, name):
            return _error(401, "UNAUTHORIZED",
                          f"unauthorized to access repository: {name}, action: pull",
                          'Basic realm="harbor"')
        art = _find(state, name, reference)
        if art is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        refused = _unaccepted(art.manifest_media_type, headers.get_all("Accept") or [])
        if refused:
            return _error(404, "MANIFEST_UNKNOWN", refused)
        body, media_type = lineage.manifest(art, state.registry_host)
        if method == "GET" and headers.get("User-Agent") != HARBOR_CLIENT:
            state.pulled(art, "" if reference.startswith("sha256:") else reference)
    return Response(200, body, media_type,
                    headers=[V2_HEADER, ("Docker-Content-Digest", art.digest)])


_OCI_NAMES = {OCI_MANIFEST: "OCI manifest found, but accept header does not support OCI "
                           "manifests",
              OCI_INDEX: "OCI index found, but accept header does not support OCI indexes"}


def _unaccepted(media_type: str, accept: list[str]) -> str:
    """distribution's refusal of an OCI manifest the client did not accept ("" if none)."""
    named = {part.split(";", 1)[0].strip().lower() for value in accept
             for part in value.split(",")}
    if media_type in _OCI_NAMES and media_type not in named:
        return _OCI_NAMES[media_type]
    return ""


def _find(state: SimState, name: str, reference: str) -> Artifact | None:
    project_name, _, short = name.partition("/")
    project = state.inventory.project(project_name, by_id=False)
    repo = state.inventory.repository(project, short) if project is not None else None
    if repo is None:
        return None
    return state.inventory.artifact(repo, reference)
