"""The feed fetcher: the one other module that imports httpx (DESIGN.md), with the Harbor
client's policy for every call.

- a timeout per attempt (``[[feed]] timeout``), ``max_retries`` retries with full-jitter
  exponential backoff for transport errors and 5xx, ``Retry-After`` (``daemon.retry``) for 429
  and 503, capped like the Harbor client's;
- a conditional request: the stored ``ETag`` as ``If-None-Match`` and ``Last-Modified`` as
  ``If-Modified-Since``, so an unchanged feed costs one 304 and no body;
- the body read as a stream, bounded by ``max_size`` (refused, not retried, past it);
- a local path instead of a URL is read from disk, its mtime standing in for Last-Modified.

Nothing here parses or stores: ``refresh`` does, so a failure anywhere keeps the last good copy.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from daemon import __version__, log
from daemon.config_checks import format_size
from daemon.config_types import FeedConfig
from daemon.errors import FeedError
from daemon.retry import parse_retry_after

RETRY_AFTER_CAP = 120.0
BACKOFF_CAP = 30.0

_log = log.get(__name__)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetch's outcome: ``body`` None for a 304 (the stored copy is current)."""

    body: bytes | None
    etag: str = ""
    last_modified: str = ""
    requests: int = 1


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


async def fetch(feed: FeedConfig, *, etag: str = "", last_modified: str = "",
                transport: httpx.AsyncBaseTransport | None = None,
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                rng: random.Random | None = None, backoff_base: float = 0.5) -> Fetched:
    """The feed's body if it changed since (``etag``, ``last_modified``); ``FeedError`` with one
    line naming the feed and URL when it cannot be had within the retry budget."""
    if not is_url(feed.url):
        return await asyncio.to_thread(_read_file, feed, last_modified)
    rng = rng or random.Random()
    headers = {"User-Agent": f"scanwatch/{__version__}", "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = feed.timeout.total_seconds()
    where = f"feed {feed.name}: GET {feed.url}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                 transport=transport, follow_redirects=True,
                                 max_redirects=5) as client:
        attempt = 0
        while True:
            wait: float | None = None
            try:
                async with client.stream("GET", feed.url, headers=headers) as response:
                    status = response.status_code
                    if status == 304:
                        return Fetched(None, etag, last_modified, attempt + 1)
                    if 200 <= status < 300:
                        body = await _read_bounded(response, feed.max_size, where)
                        return Fetched(body, response.headers.get("ETag", ""),
                                       response.headers.get("Last-Modified", ""), attempt + 1)
                    failure = FeedError(f"{where}: HTTP {status}")
                    if status in (429, 503):
                        wait = parse_retry_after(response.headers.get("Retry-After"))
                    elif status < 500:
                        raise failure
            except httpx.TransportError as exc:
                failure = FeedError(f"{where}: {type(exc).__name__}: {str(exc)[:200] or 'failed'}")
            if attempt >= feed.max_retries:
                raise failure
            wait = (min(wait, RETRY_AFTER_CAP) if wait is not None
                    else rng.uniform(0, min(BACKOFF_CAP, backoff_base * 2**attempt)))
            _log.info("feed_retry", feed=feed.name, attempt=attempt + 1, wait=round(wait, 3),
                      error=str(failure))
            attempt += 1
            await sleep(wait)


async def _read_bounded(response: httpx.Response, cap: int, where: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    too_large = FeedError(f"{where}: the response is larger than max_size = "
                          f"{format_size(cap)}; refused")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    buffer = bytearray()
    async for chunk in response.aiter_bytes():  # decoded: the cap holds after gunzip too
        buffer += chunk
        if len(buffer) > cap:
            raise too_large
    return bytes(buffer)


def _read_file(feed: FeedConfig, last_modified: str) -> Fetched:
    path = Path(feed.url)
    try:
        stat = path.stat()
        stamp = email.utils.formatdate(stat.st_mtime, usegmt=True)
        if last_modified and stamp == last_modified:
            return Fetched(None, "", last_modified)
        if stat.st_size > feed.max_size:
            raise FeedError(f"feed {feed.name}: {path} is larger than max_size = "
                            f"{format_size(feed.max_size)}; refused")
        return Fetched(path.read_bytes(), "", stamp)
    except OSError as exc:
        raise FeedError(f"feed {feed.name}: cannot read {path}: {exc.strerror}") from None
