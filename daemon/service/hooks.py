"""``POST /hooks/harbor/{registry}``: Harbor's webhook events, checked and queued, never worked on.

An event is a hint, not data: it names an artifact whose state the fast path then reads from the
API. The endpoint only decides whether to believe the request: the registry's webhook secret
(the policy's fixed ``Authorization`` header, compared in constant time; 401 with no detail,
whatever the listener's address), a 1 MB body limit (413) and the shape Harbor's
``notifier/model.Payload`` gives the four event types it subscribes to (400). Every refusal is
counted in ``scanwatch_webhook_events{result=...}`` and records nothing.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon import log
from daemon.config_types import Secret
from daemon.service.metrics import Metrics

logger = log.get(__name__)

PREFIX = "/hooks/harbor/"
MAX_BODY = 1024 * 1024
EventType = Literal["PUSH_ARTIFACT", "SCANNING_COMPLETED", "SCANNING_FAILED", "SCANNING_STOPPED"]


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore")
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    tag: str = ""
    resource_url: str = ""


class _Repository(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    repo_full_name: str = Field(min_length=1)


class _EventData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    resources: list[_Resource] = Field(min_length=1, max_length=1000)
    repository: _Repository


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: EventType
    occur_at: int
    operator: str = ""
    event_data: _EventData


@dataclass(frozen=True)
class HookEvent:
    """What the fast path needs of one event: which artifacts, in which repository, and why."""

    registry: str
    kind: str
    project: str
    repository: str  # the full name, "project/team/app", as Harbor's API names it
    digests: tuple[str, ...]
    occur_at: int


def parse_event(registry: str, body: bytes) -> HookEvent:
    """The event in ``body``; ValueError (one line) when it is not one Harbor would send."""
    try:
        payload = _Payload.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValueError(f"{where}: {first['msg']}") from None
    repo = payload.event_data.repository
    if not repo.repo_full_name.startswith(repo.namespace + "/"):
        raise ValueError("event_data.repository: repo_full_name is not in its namespace")
    digests = tuple(dict.fromkeys(r.digest for r in payload.event_data.resources))
    return HookEvent(registry, payload.type, repo.namespace, repo.repo_full_name, digests,
                     payload.occur_at)


class HookEndpoint:
    """Checks requests against each registry's secret and puts the events on ``queue``."""

    def __init__(self, secrets: Mapping[str, Secret], metrics: Metrics,
                 queue: asyncio.Queue[HookEvent]) -> None:
        self.secrets = {name: s for name, s in secrets.items() if s.present}
        self.queue = queue
        self.events = Counter("scanwatch_webhook_events", "Webhook requests, by result",
                              ["registry", "result"], registry=metrics.registry)

    def handles(self, path: str) -> bool:
        return path.startswith(PREFIX)

    def accept(self, path: str, headers: Mapping[str, str], body: bytes | None
               ) -> tuple[int, bytes]:
        """The answer to one request; ``body`` None means it was over the limit (not read)."""
        name = path[len(PREFIX):].strip("/")
        secret = self.secrets.get(name)
        if secret is None:
            return self._refuse(name or "-", "unknown", 404, b"not found\n")
        given = (headers.get("authorization") or "").encode()
        if not hmac.compare_digest(given, secret.reveal().encode()):
            return self._refuse(name, "unauthorized", 401, b"unauthorized\n")
        if body is None:
            return self._refuse(name, "too_large", 413, b"payload too large\n")
        try:
            event = parse_event(name, body)
        except ValueError as exc:
            logger.info("webhook_rejected", registry=name, reason=str(exc)[:200])
            return self._refuse(name, "malformed", 400, b"malformed event\n")
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return self._refuse(name, "busy", 503, b"busy\n")
        self.events.labels(name, "accepted").inc()
        logger.debug("webhook_queued", registry=name, kind=event.kind,
                     repository=event.repository, artifacts=len(event.digests))
        return 202, b"accepted\n"

    def _refuse(self, name: str, result: str, status: int, body: bytes) -> tuple[int, bytes]:
        self.events.labels(name if name in self.secrets else "-", result).inc()
        return status, body


async def read_request(reader: asyncio.StreamReader, head: bytes
                       ) -> tuple[dict[str, str], bytes | None]:
    """The headers of ``head`` and the body that follows, or None past :data:`MAX_BODY`."""
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    if length > MAX_BODY:
        return headers, None
    body = await asyncio.wait_for(reader.readexactly(length), timeout=5) if length else b""
    return headers, body
