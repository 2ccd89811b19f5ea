"""A real HTTP proxy on 127.0.0.1 in front of the simulator that sends what a broken or hostile
registry might: every artifact listing empty, a poisoned vulnerability report, a huge body.

    with FaultProxy(sim.url) as proxy:
        proxy.empty_listings = True      # and direct lookups 404: a permission change
        proxy.poison = lambda body: body.replace(b'"zlib"', b'"zlib\\\\ud800"')
        proxy.huge = "/additions/vulnerabilities"   # 120 MB, chunked, for paths ending so
        ... point scanwatch at proxy.url ...

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


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.empty_listings = False
        self.poison: Callable[[bytes], bytes] | None = None  # applied to report bodies
        self.huge = ""  # a path suffix answered with HUGE_BYTES of chunked JSON
        self.poisoned = 0
        self.huge_sent: list[int] = []  # bytes of each huge body written before the hang-up
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def hidden(self, route: str) -> bool:
        """A direct lookup of a repository or an artifact, which a hiding registry 404s."""
        return (self.empty_listings and "/repositories/" in route
                and not route.endswith("/artifacts") and "/additions/" not in route)

    def alter(self, route: str, body: bytes,
              headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
        if self.empty_listings and route.endswith("/artifacts"):
            return b"[]", [(k, "0" if k.lower() == "x-total-count" else v) for k, v in headers]
        if self.poison is not None and route.endswith("/additions/vulnerabilities"):
            changed = self.poison(body)
            self.poisoned += changed != body
            return changed, headers
        return body, headers

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _huge(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = json.dumps({"x": "A" * (CHUNK - 16)}).encode() + b","
            sent = 0
            try:
                self.wfile.write(b"1\r\n[\r\n")
                while sent < HUGE_BYTES:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    sent += len(piece)
                self.wfile.write(b"2\r\n{}\r\n1\r\n]\r\n0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading: what it should do
            proxy.huge_sent.append(sent)
            self.close_connection = True

        def _not_found(self) -> None:
            body = b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            route = self.path.partition("?")[0]
            if proxy.huge and self.command == "GET" and route.endswith(proxy.huge):
                return self._huge()
            if self.command == "GET" and proxy.hidden(route):
                return self._not_found()
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
