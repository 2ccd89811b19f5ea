"""Threat-intelligence feeds served from files, as CISA and FIRST serve them (not Harbor).

``GET /feeds/kev.json`` and ``GET /feeds/epss.csv.gz`` answer the current file of each feed
with a strong ``ETag`` (the SHA-256 of the body) and ``Last-Modified`` (when that version was
put in place); ``If-None-Match`` or ``If-Modified-Since`` matching the current version is a 304
with no body, as a CDN answers. A feed with no file is a 404.

Control: ``POST /_sim/feeds {"kev": "/path/kev.json", "epss": "/path/e.csv.gz"}`` swaps the
file a feed serves (a new version); ``{"kev": "garbage"}`` serves a body that is not the feed;
``GET /_sim/feeds`` returns each feed's file and how many 200/304 answers it gave.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # sim.api imports the state, which holds the feeds
    from daemon.sim.api import Response

PATHS = {"/feeds/kev.json": "kev", "/feeds/epss.csv.gz": "epss"}
TYPES = {"kev": "application/json", "epss": "application/gzip"}
GARBAGE = b"<html><body>502 Bad Gateway</body></html>"


@dataclass
class _Feed:
    source: str = ""
    body: bytes = b""
    etag: str = ""
    modified: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)


class Feeds:
    def __init__(self, files: dict[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._feeds = {name: _Feed() for name in TYPES}
        for name, path in (files or {}).items():
            self.swap(name, path)

    def swap(self, name: str, source: str) -> None:
        if name not in self._feeds:
            raise ValueError(f"no feed {name!r}; feeds: {', '.join(self._feeds)}")
        body = GARBAGE if source == "garbage" else Path(source).read_bytes()
        with self._lock:
            feed = self._feeds[name]
            feed.source, feed.body = source, body
            feed.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            # Whole seconds, and never the same second as the version before (HTTP dates).
            feed.modified = max(float(int(time.time())), feed.modified + 1)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {n: {"source": f.source, "etag": f.etag, "answers": dict(f.answers)}
                    for n, f in self._feeds.items()}

    def answer(self, path: str, headers: Any) -> Response:
        from daemon.sim.api import Response

        name = PATHS[path]
        with self._lock:
            feed = self._feeds[name]
            if not feed.body:
                return Response(404, b"not found", "text/plain")
            stamp = email.utils.formatdate(feed.modified, usegmt=True)
            validators = [("ETag", feed.etag), ("Last-Modified", stamp)]
            etags = headers.get("If-None-Match")
            since = headers.get("If-Modified-Since")
            fresh = (etags is not None and feed.etag in [e.strip() for e in etags.split(",")])
            if etags is None and since:
                try:
                    fresh = email.utils.parsedate_to_datetime(since).timestamp() >= feed.modified
                except (TypeError, ValueError):
                    fresh = False
            status = 304 if fresh else 200
            feed.answers[str(status)] = feed.answers.get(str(status), 0) + 1
            if fresh:
                return Response(304, b"", TYPES[name], validators)
            return Response(200, feed.body, TYPES[name], validators)
