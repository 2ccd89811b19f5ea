"""The HTTP side: Harbor's router (decode once, then match), auth, CSRF, faults and statistics.

Routing follows go-openapi: the path is percent-decoded once *before* it is split, so a single
encoded ``%2F`` in a repository name becomes an extra segment and matches no route (404 "path …
was not found"); handlers then unquote the repository name a second time, as Harbor's do.
"""

from __future__ import annotations

import email.utils
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from daemon.sim import registry_v2
from daemon.sim.api import ApiError, Request, Response, error_response
from daemon.sim.control_http import handle_control
from daemon.sim.feeds import PATHS
from daemon.sim.handlers import PROJECT_ARTIFACTS, ROUTES_BASE
from daemon.sim.robots_api import ROUTES as ROBOT_ROUTES
from daemon.sim.scanall_api import ROUTES as SCAN_ALL_ROUTES
from daemon.sim.state import SimState
from daemon.sim.webhook_api import ROUTES as WEBHOOK_ROUTES

REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           412: "Precondition Failed", 422: "Unprocessable Entity", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
Route = tuple[str, tuple[str, ...], str, Any]


def compile_routes(version: tuple[int, ...]) -> list[Route]:
    """Harbor's routes for ``version``: ``/projects/{p}/artifacts`` exists from v2.12 on."""
    routes = list(ROUTES_BASE) + WEBHOOK_ROUTES + SCAN_ALL_ROUTES + ROBOT_ROUTES
    routes += [PROJECT_ARTIFACTS] if version >= (2, 12) else []
    return [(m, tuple(t.strip("/").split("/")), t, h) for m, t, h in routes]


@dataclass
class Matched:
    template: str
    handler: Any
    params: dict[str, str] = field(default_factory=dict)


def match(routes: list[Route], method: str, path: str) -> tuple[Matched | None, bool]:
    """The route for ``path`` (already decoded once); the bool says a route had another method."""
    segments = tuple(path.strip("/").split("/"))
    other_method = False
    for route_method, parts, template, handler in routes:
        if len(parts) != len(segments):
            continue
        params = {}
        for part, seg in zip(parts, segments, strict=True):
            if part.startswith("{"):
                if not seg:
                    break
                params[part[1:-1]] = seg
            elif part != seg:
                break
        else:
            if route_method == method:
                return Matched(template, handler, params), False
            other_method = True
    return None, other_method


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SimState) -> None:
        self.state = state
        self.routes = compile_routes(state.options.version_tuple())
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = unquote(raw_path)
        if path in PATHS and method in ("GET", "HEAD"):
            self._send(self.server.state.feeds.answer(path, self.headers), sid=False)
            return
        if path.startswith("/_sim/"):
            self._send(handle_control(self.server.state, method, path, body), sid=False)
            return
        if path == "/service/token" or path == "/v2" or path.startswith("/v2/"):
            self._registry(method, path, raw_query)
            return
        if not (path == "/api/v2.0" or path.startswith("/api/v2.0/")):
            self._send(error_response(404, "NOT_FOUND", f"path {path} was not found"), sid=False)
            return
        self._api(method, path, raw_path, raw_query, body)

    def _api(self, method: str, path: str, raw_path: str, raw_query: str, body: bytes) -> None:
        state = self.server.state
        stats = state.stats
        stats.begin()
        route, status, triggered, fetched = f"{method} (unmatched)", 500, False, False
        counted = False
        try:
            fault = state.faults.pick(method, path)
            if fault is not None and fault.kind == "reset":
                route, status = f"{method} {self._template(method, path)}", 0
                self._reset()
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind in ("500", "502", "503", "429"):
                route = f"{method} {self._template(method, path)}"
                status = int(fault.kind)
                response = error_response(status, _fault_code(status), "simulated fault")
                if status == 429:
                    response.headers.append(("Retry-After", _retry_after(fault)))
                counted = True
                stats.count(route, status)
                self._send(response)
                return
            matched, other = match(self.server.routes, method, path[len("/api/v2.0"):] or "/")
            if matched is None:
                code = 405 if other else 404
                response = error_response(code, "METHOD_NOT_ALLOWED" if other else "NOT_FOUND",
                                          f"method {method} is not allowed" if other
                                          else f"path {path} was not found")
            else:
                route = f"{method} {matched.template}"
                request = Request(state, method, path, matched.params,
                                  dict(parse_qsl(raw_query, keep_blank_values=True)), raw_query,
                                  self.headers, body, raw_path)
                try:
                    response = self._guarded(request, matched)
                except ApiError as exc:
                    response = error_response(exc.status, exc.code, exc.message)
                triggered = matched.template.endswith("/scan") and response.status == 202
                fetched = matched.template.endswith("/vulnerabilities") and response.status == 200
            status = response.status
            counted = True  # before the bytes leave: a client that has its answer sees it
            stats.count(route, status, scan_triggered=triggered, report_fetch=fetched)
            if fault is not None and fault.kind in ("malformed", "truncated"):
                self._send(response, damage=fault.kind)
            else:
                self._send(response)
        except (ConnectionError, OSError):
            status = 0
        finally:
            if not counted:
                stats.count(route, status)
            stats.leave()

    def _registry(self, method: str, path: str, raw_query: str) -> None:
        """The registry (``/v2/``) and its token service, counted in the statistics too."""
        state = self.server.state
        state.stats.begin()
        route, status, counted = registry_v2.route_of(method, path), 500, False
        try:
            if path == "/service/token":
                response = registry_v2.token(state, self.headers, raw_query)
            else:
                response = registry_v2.v2(state, method, path, self.headers)
            status, counted = response.status, True
            state.stats.count(route, status)
            self._send(response, sid=False)
        except (ConnectionError, OSError):
            status = 0
        finally:
            if not counted:
                state.stats.count(route, status)
            state.stats.leave()

    def _guarded(self, request: Request, matched: Matched) -> Response:
        if request.method != "GET" and request.has_sid_cookie():
            raise ApiError(403, "FORBIDDEN", "CSRF token invalid")
        result: Response = matched.handler(request)
        return result

    def _template(self, method: str, path: str) -> str:
        matched, _ = match(self.server.routes, method, path[len("/api/v2.0"):] or "/")
        return matched.template if matched else "(unmatched)"

    def _reset(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send(self, response: Response, *, sid: bool = True, damage: str | None = None) -> None:
        body = response.body
        length = len(body)
        if damage == "malformed":
            body = body[: max(1, len(body) // 2)] + b"\x00<html>upstream error"
            length = len(body)
        elif damage == "truncated":
            body = body[: len(body) // 2]
        lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
                 f"Content-Type: {response.content_type}", f"Content-Length: {length}",
                 f"X-Request-Id: {self.headers.get('X-Request-Id') or uuid.uuid4()}"]
        if sid:
            lines.append(f"Set-Cookie: sid={uuid.uuid4().hex}; Path=/; HttpOnly")
        lines.extend(f"{k}: {v}" for k, v in response.headers)
        if damage == "truncated":
            lines.append("Connection: close")
            self.close_connection = True
        if self.command == "HEAD":
            body = b""  # the length of what GET would send, and no body (RFC 9110 §9.3.2)
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _fault_code(status: int) -> str:
    return {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY",
            503: "SERVICE_UNAVAILABLE"}[status]


def _retry_after(fault: Any) -> str:
    if fault.retry_after_date:
        return email.utils.formatdate(time.time() + fault.retry_after, usegmt=True)
    return str(fault.retry_after)
