"""The daemon's optional HTTP listener: /metrics, /healthz, /readyz, the web pages (daemon/web/).

It runs on the daemon's own event loop, so /healthz answering at all proves the loop is alive.
Only ``scanwatch run`` (not ``--once``) opens it, on ``[daemon] listen`` (127.0.0.1 by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from daemon import log
from daemon.service.metrics import Metrics

if TYPE_CHECKING:
    from daemon.service.hooks import HookEndpoint
    from daemon.web.app import WebApp

logger = log.get(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port))


class HttpListener:
    def __init__(self, metrics: Metrics, ready: Callable[[], tuple[bool, str]],
                 hooks: HookEndpoint | None = None, web: WebApp | None = None,
                 run: Callable[..., Any] | None = None) -> None:
        self.metrics = metrics
        self.ready = ready
        self.hooks = hooks  # POST /hooks/harbor/{registry}, when a registry has a secret
        self.web = web  # the pages (daemon/web/), rendered off the loop by ``run``
        self.run = run or asyncio.to_thread
        self.server: asyncio.Server | None = None

    async def start(self, listen: str) -> tuple[str, int]:
        host, port = parse_listen(listen)
        self.server = await asyncio.start_server(self._handle, host, port)
        bound = self.server.sockets[0].getsockname()
        logger.info("http_listening", host=bound[0], port=bound[1])
        return bound[0], bound[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def _route(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ok, why = self.ready()
            return (200 if ok else 503), "text/plain", (why + "\n").encode()
        return 404, "text/plain", b"not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            extra: dict[str, str] = {}
            if method == "POST" and self.hooks is not None and self.hooks.handles(path):
                from daemon.service.hooks import read_request

                headers, raw = await read_request(reader, request)
                status, body = self.hooks.accept(path, headers, raw)
                ctype = "text/plain"
            elif self.web is not None and self.web.handles(path):
                page = await self.run(self.web.respond, method, target, _headers(request))
                status, ctype, body, extra = (page.status, page.content_type, page.body,
                                              page.headers)
            else:
                status, ctype, body = (
                    self._route(path) if method in ("GET", "HEAD")
                    else (405, "text/plain", b"method not allowed\n")
                )
            reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
                      404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
                      500: "Internal Server Error", 503: "Service Unavailable"}[status]
            more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{more}"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError,
                ConnectionError):
            pass
        finally:
            writer.close()


def _headers(request: bytes) -> dict[str, str]:
    """The request head's fields, names in lower case (the last of a repeated one wins)."""
    out: dict[str, str] = {}
    for line in request.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out
