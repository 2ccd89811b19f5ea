"""A real HTTP proxy on 127.0.0.1 in front of the simulator, which can degrade Harbor's listings.

What a listing can suffer between Harbor and scanwatch (a reverse proxy, a cache, a permission
change): ``drop_per_page`` drops the last item of every page of artifact listings and keeps
``X-Total-Count``; ``hide_projects`` leaves projects out of ``GET /projects`` and lowers the
count to match, so that the page looks whole. Everything else passes through unchanged.

    with ListingProxy(sim.url) as proxy:
        proxy.drop_per_page = True
        ... point scanwatch at proxy.url ...
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class ListingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.drop_per_page = False
        self.hide_projects: set[str] = set()
        self.dropped = 0  # items dropped so far
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def alter(self, method: str, path: str, status: int, body: bytes,
              headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
        route = path.partition("?")[0]
        if method != "GET" or status != 200:
            return body, headers
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

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ListingProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _handler(proxy: ListingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _forward(self) -> None:
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
            data, kept = proxy.alter(self.command, self.path, response.status, data, kept)
            self.send_response(response.status)
            for key, value in kept:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815

    return Handler
