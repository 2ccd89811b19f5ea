"""Delivery: the outbox worker, and the only module that imports apprise (lazily).

Each outbox row is one message for one receiver URL. The worker sends due rows, and after a
success writes the notification log and marks the row sent in one transaction (at-least-once:
a crash between the send and that commit resends only the message that was in flight). A
failure is retried with exponential backoff, or after the channel's ``Retry-After``; a refusal
for good (401, 403, 404, 410, an invalid URL) and a row older than its receiver's ``max_age``
are dead-lettered: logged, counted through ``on_dead`` and listed by ``scanwatch alerts outbox``.

apprise hides HTTP statuses and Retry-After behind a boolean, so each send runs in a worker
thread whose ``requests`` responses are recorded (a wrapper around ``requests.Session.send``
that records only inside our sends). The plugin's ``send()`` is called directly: the renderer
already produced the channel's exact markup and size, and apprise's own conversion would
re-escape Slack entities or turn ``!word>`` back into mentions. Plugin self-throttling
(``request_rate_per_sec``) is switched off per instance: the worker paces itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from daemon import log
from daemon.config_types import Config
from daemon.retry import parse_retry_after

_log = log.get(__name__)

PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 410})
_responses: contextvars.ContextVar[list[tuple[int, str | None]] | None] = contextvars.ContextVar(
    "scanwatch_http_responses", default=None)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    ok: bool
    permanent: bool = False
    retry_after: float | None = None  # seconds, when the channel said so
    error: str = ""


class Sender(Protocol):
    async def __call__(self, url: str, title: str, body: str, body_format: str) -> SendOutcome:
        ...


def _install_recorder() -> None:
    import requests

    original = requests.Session.send
    if getattr(original, "_scanwatch", False):
        return

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        seen = _responses.get()
        if seen is not None:
            seen.append((response.status_code, response.headers.get("Retry-After")))
        return response

    send._scanwatch = True  # type: ignore[attr-defined]
    requests.Session.send = send  # type: ignore[method-assign]


def scheme_known(url: str) -> bool:
    """Whether apprise has a plugin for the scheme of ``url`` (what a receiver URL needs)."""
    from apprise.manager_plugins import NotificationManager

    scheme = url.partition("://")[0].lower()
    known: list[str] = NotificationManager().schemas()  # type: ignore[no-untyped-call]
    return bool(scheme) and scheme in known


def _classify(ok: bool, seen: list[tuple[int, str | None]], error: str) -> SendOutcome:
    if ok:
        return SendOutcome(True)
    if not seen:
        return SendOutcome(False, error=error or "no response (connection failed)")
    status, retry_after = seen[-1]
    message = f"HTTP {status}"
    if status in PERMANENT_STATUSES:
        return SendOutcome(False, permanent=True, error=f"{message}: refused for good")
    return SendOutcome(False, retry_after=parse_retry_after(retry_after),
                       error=message)


def _send_sync(url: str, title: str, body: str, body_format: str) -> SendOutcome:
    import apprise

    _install_recorder()
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return SendOutcome(False, permanent=True, error="not a usable apprise URL")
    plugin.request_rate_per_sec = 0
    seen: list[tuple[int, str | None]] = []
    token = _responses.set(seen)
    error = ""
    try:
        ok = bool(plugin.send(body=body, title=title, notify_type=apprise.NotifyType.INFO,
                              body_format=apprise.NotifyFormat(body_format)))
    except Exception as exc:  # a plugin crash is one failed attempt, not a dead worker
        ok, error = False, f"{type(exc).__name__} in apprise"
    finally:
        _responses.reset(token)
    return _classify(ok, seen, error)


async def apprise_send(url: str, title: str, body: str, body_format: str) -> SendOutcome:
    """Send through apprise in a worker thread (it blocks on ``requests``/``smtplib``)."""
    return await asyncio.to_thread(_send_sync, url, title, body, body_format)


@dataclass(frozen=True)
class Backoff:
    base: float = 2.0  # seconds before the first retry
    cap: float = 600.0

    def delay(self, attempts: int) -> float:
        """Full jitter over base·2^(attempts-1), capped."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


async def deliver_pending(
    store: Any,
    config: Config,
    *,
    now_fn: Callable[[], datetime] = lambda: datetime.now(UTC),
    deadline: datetime | None = None,
    sender: Sender = apprise_send,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_dead: Callable[[str, str], None] | None = None,
    on_sent: Callable[[str], None] | None = None,
) -> DeliveryReport:
    """Send due outbox rows, retrying until each is sent or dead, or ``deadline`` passes.

    Without a deadline, one pass over the rows due now. Rows left pending keep their
    ``next_attempt_at`` for the next call. ``on_dead(receiver, reason)`` and
    ``on_sent(receiver)`` are the daemon's metric hooks.
    """
    from daemon.store import outbox as store_outbox

    report = DeliveryReport()
    while True:
        now = now_fn()
        rows = store_outbox.due(store, now)
        for row in rows:
            await _deliver_one(store, config, row, now_fn, sender, backoff, report, on_dead,
                               on_sent)
        pending = store_outbox.listing(store, "pending", limit=1000)
        report.pending = len(pending)
        if not pending or deadline is None:
            return report
        now = now_fn()
        soonest = min((r.next_attempt_at or now) for r in pending)
        if soonest >= deadline or now >= deadline:
            return report
        if soonest > now:
            await sleep((soonest - now).total_seconds())


async def _deliver_one(
    store: Any, config: Config, row: Any, now_fn: Callable[[], datetime], sender: Sender,
    backoff: Backoff, report: DeliveryReport, on_dead: Callable[[str, str], None] | None,
    on_sent: Callable[[str], None] | None,
) -> None:
    from daemon.store import outbox as store_outbox

    receiver = config.receiver(row.receiver)
    payload = row.payload
    index = int(payload.get("url_index", 0))
    now = now_fn()
    attempted = False  # only a real send counts as an attempt
    if receiver is None or index >= len(receiver.urls):
        outcome = SendOutcome(False, permanent=True, error="receiver or URL no longer configured")
    elif now - row.created_at > receiver.max_age:
        outcome = SendOutcome(False, error=row.last_error or "not sent")
    else:
        attempted = True
        outcome = await sender(receiver.urls[index].reveal(), payload["title"], payload["body"],
                               payload["body_format"])
    attempts = row.attempts + (1 if attempted else 0)
    now = now_fn()
    if outcome.ok:
        _crash_hook("before_mark")
        store_outbox.mark_sent(store, row, now)
        report.sent += 1
        _log.info("alert_sent", receiver=row.receiver, message=row.message_id,
                  attempts=row.attempts + 1)
        if on_sent:
            on_sent(row.receiver)
        return
    too_old = receiver is not None and now - row.created_at > receiver.max_age
    if outcome.permanent or too_old:
        reason = outcome.error if outcome.permanent else (
            f"older than max_age ({receiver.max_age if receiver else ''}); last: {outcome.error}")
        store_outbox.mark_failed(store, row, error=reason, next_attempt_at=None, dead_at=now,
                                 attempted=attempted)
        report.dead += 1
        report.errors.append(f"{row.receiver}: {reason}")
        _log.error("alert_dead_lettered", receiver=row.receiver, message=row.message_id,
                   attempts=attempts, error=reason)
        if on_dead:
            on_dead(row.receiver, "permanent" if outcome.permanent else "max_age")
        return
    wait = outcome.retry_after if outcome.retry_after is not None else backoff.delay(
        row.attempts + 1)
    store_outbox.mark_failed(store, row, error=outcome.error,
                             next_attempt_at=now + timedelta(seconds=wait))
    report.retried += 1
    _log.warning("alert_send_failed", receiver=row.receiver, message=row.message_id,
                 attempts=row.attempts + 1, error=outcome.error, retry_in=round(wait, 3))


def _crash_hook(point: str) -> None:
    """Test hook: ``SCANWATCH_TEST_CRASH_AT=<point>`` kills the process there (fault tests)."""
    import os
    import signal

    if os.environ.get("SCANWATCH_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


async def send_test(config: Config, receiver_name: str, *, sender: Sender = apprise_send,
                    now: datetime | None = None) -> list[SendOutcome]:
    """Send a test message to every URL of a receiver (``scanwatch notify test``)."""
    from daemon.alerts.message import Message
    from daemon.alerts.render import format_for_url, render

    receiver = config.receiver(receiver_name)
    assert receiver is not None
    message = Message(id="test", receiver=receiver_name, registry="scanwatch", routes=(),
                      kind="test", context="test message", created_at=now or datetime.now(UTC),
                      notices=("This is a test message from scanwatch: delivery works.",))
    out = []
    for url in receiver.urls:
        r = render(message, format_for_url(url.reveal(), receiver.format))
        out.append(await sender(url.reveal(), r.title, r.body, r.body_format))
    return out


def email_text_part(html: str) -> str:
    """The plain-text part apprise's email plugin builds from an HTML body."""
    from apprise import NotifyFormat
    from apprise.conversion import convert_between

    return str(convert_between(NotifyFormat.HTML, NotifyFormat.TEXT, html))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Endpoint:
    """Where a receiver URL sends, as apprise reads it, for a check that sends nothing
    (`scanwatch doctor`): SMTP with its TLS mode and login, or an HTTP(S) host."""

    kind: str  # "smtp" or "http"
    host: str
    port: int
    tls: str = ""  # smtp: "", "starttls" or "ssl"; http: "https" or ""
    user: str = ""
    password: str = ""


def endpoint(url: str) -> Endpoint | None:
    """The endpoint of an apprise ``url`` (None where apprise cannot read it)."""
    from urllib.parse import urlsplit

    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        return None
    smtp_host = getattr(plugin, "smtp_host", None)
    if smtp_host:
        mode = str(getattr(plugin, "secure_mode", "") or "")
        tls = {"starttls": "starttls", "ssl": "ssl"}.get(mode, "")
        return Endpoint("smtp", smtp_host, int(plugin.port or (465 if tls == "ssl" else 25)),
                        tls, str(plugin.user or ""), str(plugin.password or ""))
    fixed = getattr(plugin, "webhook_url", None) or getattr(plugin, "notify_url", None)
    if isinstance(fixed, str) and fixed.startswith("http"):  # a service's own address
        parts = urlsplit(fixed)
        secure = parts.scheme == "https"
        return Endpoint("http", parts.hostname or "", parts.port or (443 if secure else 80),
                        "https" if secure else "")
    host = getattr(plugin, "host", None)
    if not host:
        return None
    secure = bool(getattr(plugin, "secure", False))
    return Endpoint("http", str(host), int(plugin.port or (443 if secure else 80)),
                    "https" if secure else "")
