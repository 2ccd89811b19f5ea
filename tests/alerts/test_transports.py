"""Transports against real servers on 127.0.0.1: each channel classifies its own failures.

A real SMTP server (aiosmtpd, with AUTH) and a real HTTP server standing in for Slack's hook and
a JSON webhook; the outbox in a real SQLite store for what a classification leads to.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alertkit import HookServer, seeded_store
from structlog.testing import capture_logs

from daemon.alerts.deliver import deliver_pending
from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.alerts.transports import ErrorLog, RetryPolicy, SendOutcome, send
from daemon.config_types import Config, ReceiverConfig, RouteConfig, Secret
from daemon.store import outbox as store_outbox
from tests.store.store_helpers import at

NOW = at(1) + timedelta(minutes=10)


@contextlib.contextmanager
def smtp_with_auth(password: str) -> Iterator[tuple[list[Any], int]]:
    """An aiosmtpd server that accepts only user ``scanwatch`` with ``password``."""
    import email
    import email.policy

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
            received.append(email.message_from_bytes(envelope.content,
                                                     policy=email.policy.default))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = auth_data.login == b"scanwatch" and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)  # the server answers 535 itself

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield received, port
    finally:
        controller.stop()


def mail_url(port: int, password: str) -> str:
    return (f"mailto://scanwatch:{password}@127.0.0.1:{port}"
            "?from=scanwatch@example.org&to=ops@example.org")


async def test_it_dead_letters_a_wrong_smtp_password_at_once_with_the_servers_answer(
    tmp_path: Path,
) -> None:
    with smtp_with_auth("right") as (received, port):
        outcome = await send(mail_url(port, "wrong"), "t", "<p>b</p>", "html", message_id="m.0")
        assert (outcome.ok, outcome.permanent) == (False, True)
        assert outcome.error.startswith("SMTP 535") and "wrong" not in outcome.error
        store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
        config = Config(receivers=(ReceiverConfig(
            "mail", (Secret(mail_url(port, "wrong"), "literal"),)),),
            routes=(RouteConfig(("mail",), name="m", events=("new", "scan_failed")),))
        build_and_queue(store, config, run_context=RunContext(name="nightly"), now=NOW)
        report = await deliver_pending(store, config, now_fn=lambda: NOW)
        assert (report.sent, report.retried, report.dead) == (0, 0, 1)
        [row] = store_outbox.listing(store, "dead")
        assert row.attempts == 1 and row.last_error.startswith("SMTP 535")
        assert received == []
        store.close()


async def test_it_mails_with_the_right_password_and_carries_the_message_id() -> None:
    with smtp_with_auth("right") as (received, port):
        outcome = await send(mail_url(port, "right"), "Subject ✓", "<p>CVE-1</p>", "html",
                             message_id="abc.0", text="CVE-1 as text")
        assert outcome.ok, outcome.error
        [mail] = received
        assert mail["X-Scanwatch-Message-Id"] == "abc.0"
        assert "scanwatch.abc.0" in mail["Message-ID"] and mail["Subject"] == "Subject ✓"
        parts = {p.get_content_type(): p.get_content() for p in mail.walk()
                 if not p.is_multipart()}
        assert parts["text/plain"].strip() == "CVE-1 as text"
        assert parts["text/html"].strip() == "<p>CVE-1</p>"


async def test_it_retries_an_smtp_server_that_is_not_there() -> None:
    outcome = await send("mailto://127.0.0.1:9?from=a@example.org&to=b@example.org", "t", "b",
                         "text", message_id="x.0")
    assert (outcome.ok, outcome.permanent) == (False, False)
    assert "no answer" in outcome.error


@pytest.mark.parametrize(
    ("status", "headers", "body", "permanent", "retry_after"),
    [(404, {}, b"no_service", True, None),
     (403, {}, b"invalid_token", True, None),
     (410, {}, b"channel_is_archived", True, None),
     (400, {}, b"invalid_token", True, None),
     (500, {}, b"oops", False, None),
     (503, {"Retry-After": "3"}, b"later", False, 3.0),
     (429, {"Retry-After": "9"}, b"rate_limited", False, 9.0)],
    ids=["404-permanent", "403-invalid-token-permanent", "410-archived-permanent",
         "400-invalid-token-word-permanent", "500-retried", "503-retry-after",
         "429-retry-after"],
)
async def test_it_classifies_slacks_answers(  # type: ignore[no-untyped-def]
    slack_to_hook: HookServer, status, headers, body, permanent, retry_after
) -> None:
    slack_to_hook.script = [(status, headers, body)]
    outcome = await send("slack://TA1/BB2/CC3/", "t", "b", "markdown", message_id="s.0")
    assert (outcome.ok, outcome.permanent, outcome.retry_after) == (False, permanent,
                                                                    retry_after)
    assert f"HTTP {status}" in outcome.error


async def test_it_posts_to_slack_with_the_message_id(slack_to_hook: HookServer) -> None:
    outcome = await send("slack://TA1/BB2/CC3/#security", "title", "*body*", "markdown",
                         message_id="m1.0")
    assert outcome.ok, outcome.error
    [payload] = slack_to_hook.json_bodies()
    assert slack_to_hook.requests[0][0] == "/services/TA1/BB2/CC3"
    assert slack_to_hook.headers[0]["X-Scanwatch-Message-Id"] == "m1.0"
    assert payload["channel"] == "#security" and payload["attachments"][0]["text"] == "*body*"
    assert payload["attachments"][0]["footer"] == "scanwatch message m1.0"


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(401, True), (403, True), (404, True), (410, True), (422, True), (408, False),
     (429, False), (502, False)],
    ids=["401", "403", "404", "410", "422-refused", "408-retried", "429-retried",
         "502-retried"],
)
async def test_it_classifies_a_json_webhooks_statuses(hook: HookServer, status: int,
                                                      permanent: bool) -> None:
    hook.script = [(status, {}, b"no")]
    outcome = await send(f"json://127.0.0.1:{hook.port}/x", "t", "b", "text", message_id="j.0")
    assert (outcome.ok, outcome.permanent) == (False, permanent)


async def test_it_sends_the_json_webhook_its_headers_auth_and_message_id(
    hook: HookServer,
) -> None:
    outcome = await send(f"json://bob:pw@127.0.0.1:{hook.port}/x?+X-Team=sec", "t", "b", "text",
                         message_id="j.1")
    assert outcome.ok, outcome.error
    [headers] = hook.headers
    assert headers["X-Scanwatch-Message-Id"] == "j.1" and headers["X-Team"] == "sec"
    assert headers["Authorization"].startswith("Basic ")
    [payload] = hook.json_bodies()
    assert payload == {"version": "1.0", "title": "t", "message": "b", "type": "info",
                       "message_id": "j.1"}


@pytest.fixture
def info_logs() -> Iterator[None]:
    """Log at info and above for the test (an earlier test may have left warning)."""
    import io

    from daemon import log

    log.configure("info", stream=io.StringIO())
    yield
    log.configure("warning", stream=io.StringIO())


def test_it_logs_once_per_change_of_a_receivers_error_state(info_logs: None) -> None:
    errors = ErrorLog()
    down = SendOutcome(False, error="HTTP 500")
    with capture_logs() as logs:
        changes = [errors.record("sec", o) for o in
                   (down, down, down, SendOutcome(False, error="HTTP 502"), SendOutcome(True),
                    SendOutcome(True))]
    assert changes == [True, False, False, True, True, False]
    assert [(e["event"], e.get("error")) for e in logs] == [
        ("alert_receiver_failing", "HTTP 500"), ("alert_receiver_failing", "HTTP 502"),
        ("alert_receiver_recovered", None)]


def test_its_backoff_grows_with_jitter_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(base=2.0, cap=60.0)
    for attempts, (low, high) in {1: (1, 2), 2: (2, 4), 3: (4, 8), 10: (30, 60)}.items():
        waits = [policy.delay(attempts) for _ in range(200)]
        assert low <= min(waits) and max(waits) <= high
        assert len(set(waits)) > 100  # jittered, not one fixed wait


async def test_a_429_holds_every_message_of_that_receiver_url(tmp_path: Path,
                                                              hook: HookServer) -> None:
    """Two messages to one hook: the 429 of the first holds the second until Retry-After, and
    one log line says the receiver is failing; after the wait both go out."""
    store = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    url = Secret(f"json://127.0.0.1:{hook.port}/hook", "literal")
    config = Config(receivers=(ReceiverConfig("sec", (url,)),),
                    routes=(RouteConfig(("sec",), name="a", events=("new",)),
                            RouteConfig(("sec",), name="b", events=("scan_failed",))))
    build_and_queue(store, config, run_context=RunContext(name="nightly"), now=NOW)
    _second_message(store)
    hook.script = [(429, {"Retry-After": "30"}, b"slow down")]
    errors = ErrorLog()
    with capture_logs() as logs:
        report = await deliver_pending(store, config, now_fn=lambda: NOW, errors=errors)
    assert (report.sent, report.retried, len(hook.requests)) == (0, 1, 1)
    pending = store_outbox.listing(store, "pending")
    assert len(pending) == 2
    assert {r.next_attempt_at for r in pending} == {NOW + timedelta(seconds=30)}
    assert [e["event"] for e in logs if e["event"].startswith("alert_receiver")] == [
        "alert_receiver_failing"]
    early = await deliver_pending(store, config, now_fn=lambda: NOW + timedelta(seconds=29),
                                  errors=errors)
    assert early.sent == 0 and len(hook.requests) == 1
    later = await deliver_pending(store, config, now_fn=lambda: NOW + timedelta(seconds=30),
                                  errors=errors)
    assert later.sent == 2 and len(hook.requests) == 3
    ids = [h["X-Scanwatch-Message-Id"] for h in hook.headers]
    assert ids[0] in ids[1:] and len(set(ids)) == 2  # the retried one kept its id
    store.close()


def _second_message(store: Any) -> None:
    """A copy of the queued row under another id: a second message for the same URL."""
    import json

    from daemon.store import tables as t

    [row] = store_outbox.listing(store, "pending")
    payload = {**row.payload, "message": "second", "findings": []}
    with store.engine.begin() as conn:
        conn.execute(t.outbox.insert().values(
            message_id="second.0", receiver=row.receiver, route=row.route,
            payloads=json.dumps(payload), created_at=NOW))


async def test_notify_test_names_no_registry_that_does_not_exist(hook: HookServer) -> None:
    from daemon.alerts.deliver import send_test

    url = Secret(f"json://127.0.0.1:{hook.port}/hook", "literal")
    config = Config(receivers=(ReceiverConfig("sec", (url,)),))
    [outcome] = await send_test(config, "sec", now=NOW)
    assert outcome.ok, outcome.error
    [payload] = hook.json_bodies()
    assert hook.headers[0]["X-Scanwatch-Message-Id"] == "test"
    import json

    doc = json.loads(payload["message"])
    assert doc["details_command"] == "scanwatch findings" and doc["kind"] == "test"
    assert "--registry" not in payload["message"]
