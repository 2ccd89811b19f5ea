"""Delivery: the outbox worker. Channels live in ``alerts/transports/`` (one class each).

Each outbox row is one message for one receiver URL. The worker sends due rows, and after a
success writes the notification log and marks the row sent in one transaction (at-least-once).
A failure the transport calls transient is retried after the receiver's ``Retry-After``, else
after the backoff of ``RetryPolicy`` (tenacity), and that wait holds the whole receiver URL:
every pending row for it waits too, so a 429 is honoured for the endpoint, not for one message
(a receiver's other URLs, say its email beside its Slack, are other endpoints and go on). A
failure the transport calls permanent (a wrong SMTP password, a Slack hook that is gone, a
webhook's 401/403/404/410) and a row older than its receiver's ``max_age`` are dead-lettered:
logged, counted through ``on_dead`` and listed by ``scanwatch alerts outbox``. One log line is
written per change of a receiver's error state (``transports.ErrorLog``), not per attempt.

Crash points (what a restart resends; ``tests/alerts/test_outbox_crash.py`` kills the process
at each through ``SCANWATCH_TEST_CRASH_AT``):

- ``before_commit``: the rows were built, not committed. Nothing was queued; the next pass
  builds them again from the same events.
- ``after_queue``: the outbox rows and the routes' cursors are committed, nothing sent. The next
  start sends every row; no event is queued twice (the cursors moved with the rows).
- ``before_mark``: a row was sent and the process died before its "sent" commit. The next start
  sends that one row again with the same ``X-Scanwatch-Message-Id`` (at-least-once: a receiver
  that keeps the id can drop the copy); every row sent and marked before is not resent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from daemon import log
from daemon.alerts.transports import ERRORS, ErrorLog, RetryPolicy, send
from daemon.alerts.transports import SendOutcome as SendOutcome
from daemon.alerts.transports import email_text_part as email_text_part
from daemon.alerts.transports import scheme_known as scheme_known
from daemon.config_types import Config

if TYPE_CHECKING:
    from daemon.store.db import Store

_log = log.get(__name__)

Backoff = RetryPolicy  # the name tests and callers used before transports/ existed
apprise_send = send
DEFAULT_RETRY = RetryPolicy()


class Sender(Protocol):
    async def __call__(self, url: str, title: str, body: str, body_format: str, *,
                       message_id: str = "", text: str = "") -> SendOutcome:
        ...


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


async def deliver_pending(
    store: Store,
    config: Config,
    *,
    now_fn: Callable[[], datetime] = lambda: datetime.now(UTC),
    deadline: datetime | None = None,
    sender: Sender = apprise_send,
    backoff: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_dead: Callable[[str, str], None] | None = None,
    on_sent: Callable[[str], None] | None = None,
    errors: ErrorLog = ERRORS,
) -> DeliveryReport:
    """Send due outbox rows, retrying until each is sent or dead, or ``deadline`` passes.

    Without a deadline, one pass over the rows due now. Rows left pending keep their
    ``next_attempt_at`` for the next call. ``on_dead(receiver, reason)`` and
    ``on_sent(receiver)`` are the daemon's metric hooks. A receiver URL that fails for now is
    held: its other rows wait for the same next attempt (``store.outbox.hold_receiver``).
    """
    from daemon.store import outbox as store_outbox

    report = DeliveryReport()
    while True:
        now = now_fn()
        rows = store_outbox.due(store, now)
        held: set[tuple[str, int]] = set()
        for row in rows:
            endpoint = (row.receiver, int(row.payload.get("url_index", 0)))
            if endpoint in held:
                continue
            if not await _deliver_one(store, config, row, now_fn, sender, backoff, report,
                                      on_dead, on_sent, errors):
                held.add(endpoint)
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
    store: Store, config: Config, row: Any, now_fn: Callable[[], datetime], sender: Sender,
    backoff: Backoff, report: DeliveryReport, on_dead: Callable[[str, str], None] | None,
    on_sent: Callable[[str], None] | None, errors: ErrorLog,
) -> bool:
    """Send one row; False when its receiver failed for now and is held."""
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
                               payload["body_format"], message_id=row.message_id,
                               text=payload.get("text", ""))
        errors.record(row.receiver, outcome, message=row.message_id, attempts=row.attempts + 1)
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
        return True
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
        return True
    wait = outcome.retry_after if outcome.retry_after is not None else backoff.delay(
        row.attempts + 1)
    until = now + timedelta(seconds=wait)
    store_outbox.mark_failed(store, row, error=outcome.error, next_attempt_at=until)
    held = store_outbox.hold_receiver(store, row.receiver, index, until)
    report.retried += 1
    _log.debug("alert_send_failed", receiver=row.receiver, message=row.message_id,
               attempts=row.attempts + 1, error=outcome.error, retry_in=round(wait, 3),
               held=held)
    return False


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
        text = render(message, "text").body if r.body_format == "html" else ""
        out.append(await sender(url.reveal(), r.title, r.body, r.body_format,
                                message_id="test", text=text))
    return out
