"""A real HTTP proxy on 127.0.0.1 in front of the simulator, which sends what a broken or hostile
registry (or a reverse proxy, a cache, a permission change between Harbor and scanwatch) might.

One forwarder, :class:`RegistryProxy`, with two hooks: ``answer`` may reply instead of Harbor,
``alter`` may change a 200 GET's body and headers on the way back. Each kind of trouble is a
small subclass:

    with FaultProxy(sim.url) as proxy:
        proxy.empty_listings = True      # and direct lookups 404: a permission change
        proxy.poison = lambda body: body.replace(b'"zlib"', b'"zlib\\\\ud800"')
        proxy.huge = "/additions/vulnerabilities"   # 120 MB, chunked, for paths ending so
    with ListingProxy(sim.url) as proxy:
        proxy.drop_per_page = True       # the last item of every artifact page, count kept
        proxy.hide_projects = {"payments"}   # left out of GET /projects, count lowered

Everything else passes through unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
HUGE_BYTES = 120 * 1024 * 1024
CHUNK = 1024 * 1024
Headers = list[tuple[str, str]]


class RegistryProxy:
    """Forwards every request to ``upstream``; subclasses override the hooks."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def answer(self, handler: BaseHTTPRequestHandler, route: str) -> bool:
        """Reply to the request here, not upstream; True when it did."""
        return False

    def alter(self, route: str, body: bytes, headers: Headers) -> tuple[bytes, Headers]:
        """A 200 GET's body and headers on their way back to the client."""
        return body, headers

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RegistryProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class FaultProxy(RegistryProxy):
    """Every artifact listing empty (and direct lookups 404), a poisoned report, a huge body."""

    def __init__(self, upstream: str) -> None:
        self.empty_listings = False
        self.poison: Callable[[bytes], bytes] | None = None  # applied to report bodies
        self.huge = ""  # a path suffix answered with HUGE_BYTES of chunked JSON
        self.poisoned = 0
        self.huge_sent: list[int] = []  # bytes of each huge body written before the hang-up
        super().__init__(upstream)

    def hidden(self, route: str) -> bool:
        """A direct lookup of a repository or an artifact, which a hiding registry 404s."""
        return (self.empty_listings and "/repositories/" in route
                and not route.endswith("/artifacts") and "/additions/" not in route)

    def answer(self, handler: BaseHTTPRequestHandler, route: str) -> bool:
        if handler.command != "GET":
            return False
        if self.huge and route.endswith(self.huge):
            self.huge_sent.append(_huge(handler))
            return True
        if self.hidden(route):
            _reply(handler, 404, b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}')
            return True
        return False

    def alter(self, route: str, body: bytes, headers: Headers) -> tuple[bytes, Headers]:
        if self.empty_listings and route.endswith("/artifacts"):
            return b"[]", [(k, "0" if k.lower() == "x-total-count" else v) for k, v in headers]
        if self.poison is not None and route.endswith("/additions/vulnerabilities"):
            changed = self.poison(body)
            self.poisoned += changed != body
            return changed, headers
        return body, headers


class ListingProxy(RegistryProxy):
    """Listings degraded: items dropped per page with the count kept, projects hidden with the
    count lowered to match (the page looks whole)."""

    def __init__(self, upstream: str) -> None:
        self.drop_per_page = False
        self.hide_projects: set[str] = set()
        self.dropped = 0  # items dropped so far
        super().__init__(upstream)

    def alter(self, route: str, body: bytes, headers: Headers) -> tuple[bytes, Headers]:
        if self.drop_per_page and route.endswith("/artifacts"):
            items = json.loads(body)
            if items:
                self.dropped += 1
                return json.dumps(items[:-1]).encode(), headers
        if self.hide_projects and route == "/api/v2.0/projects":
            items = json.loads(body)
            kept = [p for p in items if p["name"] not in self.hide_projects]
            hidden = len(items) - len(kept)
            headers = [(k, str(int(v) - hidden) if k.lower() == "x-total-count" else v)
                       for k, v in headers]
            return json.dumps(kept).encode(), headers
        return body, headers


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _huge(handler: BaseHTTPRequestHandler) -> int:
    """HUGE_BYTES of chunked JSON, until the client hangs up; the bytes written."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    piece = json.dumps({"x": "A" * (CHUNK - 16)}).encode() + b","
    sent = 0
    try:
        handler.wfile.write(b"1\r\n[\r\n")
        while sent < HUGE_BYTES:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        handler.wfile.write(b"2\r\n{}\r\n1\r\n]\r\n0\r\n\r\n")
    except OSError:
        pass  # the client stopped reading: what it should do
    handler.close_connection = True
    return sent


def _handler(proxy: RegistryProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _forward(self) -> None:
            route = self.path.partition("?")[0]
            if proxy.answer(self, route):
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            upstream = http.client.HTTPConnection(proxy.upstream.hostname or "127.0.0.1",
                                                  proxy.upstream.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP]
            finally:
                upstream.close()
            if self.command == "GET" and response.status == 200:
                data, kept = proxy.alter(route, data, kept)
            self.send_response(response.status)
            for key, value in kept:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815

    return Handler
