"""Delivery through apprise against real servers on 127.0.0.1 (SMTP, Slack-like, JSON)."""

from __future__ import annotations

import email
import io
import itertools
import json

import pytest
from alertkit import NOW, HookServer, hostile_items, sample_items

from daemon import log
from daemon.alerts.deliver import apprise_send
from daemon.alerts.group import RunContext, group
from daemon.alerts.message import Message
from daemon.alerts.render import render
from daemon.alerts.route import route_items
from daemon.config_types import EVENTS, RouteConfig
from daemon.model import Severity
from daemon.retry import parse_retry_after

CTX = RunContext(name="nightly", registry_urls={"prod-harbor": "https://harbor.example.com"},
                 project_ids={("prod-harbor", "payments"): 3})


def build(items) -> Message:  # type: ignore[no-untyped-def]
    counter = itertools.count(1)
    route = RouteConfig(("secops",), events=EVENTS, min_severity=Severity.NONE)
    [m] = group(route_items(items, [route]), CTX, NOW, new_id=lambda: f"msg{next(counter)}")
    return m


async def test_it_mails_subject_text_and_html_through_a_real_smtp_server(smtp) -> None:  # type: ignore[no-untyped-def]
    inbox, port = smtp
    r = render(build(sample_items()), "email")
    url = f"mailto://127.0.0.1:{port}?from=scanwatch@example.org&to=ops@example.org"
    outcome = await apprise_send(url, r.title, r.body, r.body_format)
    assert outcome.ok, outcome.error
    [mail] = inbox.messages
    assert str(email.header.make_header(email.header.decode_header(mail["Subject"]))) == r.title
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk()
             if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert parts["text/html"].replace("\r\n", "\n").strip() == r.body.strip()
    for vuln in ("CVE-2024-0001", "CVE-2024-0002", "CVE-2024-5555", "CVE-2025-1000",
                 "CVE-2023-1111", "CVE-2023-2222", "CVE-2024-0777"):
        assert vuln in parts["text/plain"]
    assert "Upgrade openssl 3.0.13-1~deb12u1 → 3.0.15-1~deb12u1" in parts["text/plain"]


async def test_it_posts_our_escaped_mrkdwn_to_a_slack_webhook(slack_to_hook: HookServer) -> None:
    r = render(build(hostile_items()), "slack")
    outcome = await apprise_send("slack://TA1/BB2/CC3/?image=no&footer=no", r.title, r.body,
                                 r.body_format)
    assert outcome.ok, outcome.error
    [(path, _)] = slack_to_hook.requests
    assert path == "/services/TA1/BB2/CC3"
    [payload] = slack_to_hook.json_bodies()
    text = payload["attachments"][0]["text"]
    assert payload["mrkdwn"] is True and text == r.body  # apprise passed it through untouched
    assert "<!channel>" not in text and "<@U123>" not in text and "&lt;!channel&gt;" in text


async def test_it_posts_the_documented_document_to_a_json_webhook(hook: HookServer) -> None:
    r = render(build(sample_items()), "json")
    outcome = await apprise_send(f"json://127.0.0.1:{hook.port}/alerts", r.title, r.body,
                                 r.body_format)
    assert outcome.ok, outcome.error
    [payload] = hook.json_bodies()
    assert hook.requests[0][0] == "/alerts"
    assert payload["title"] == r.title
    doc = json.loads(payload["message"])
    assert doc["schema"] == "scanwatch.alert/v2" and doc["fix_now"][0]["package"] == "openssl"


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [(500, {}, False, None), (429, {"Retry-After": "7"}, False, 7.0), (404, {}, True, None),
     (401, {}, True, None), (503, {"Retry-After": "2"}, False, 2.0)],
    ids=["500-transient", "429-retry-after", "404-permanent", "401-permanent", "503-retry-after"],
)
async def test_it_reads_the_status_and_retry_after_behind_apprise(  # type: ignore[no-untyped-def]
    hook: HookServer, status, headers, permanent, retry_after
) -> None:
    hook.script = [(status, headers, b"no")]
    outcome = await apprise_send(f"json://127.0.0.1:{hook.port}/x", "t", "b", "text")
    assert (outcome.ok, outcome.permanent, outcome.retry_after) == (False, permanent, retry_after)
    assert f"HTTP {status}" in outcome.error


async def test_it_reports_a_server_that_is_down_as_transient() -> None:
    outcome = await apprise_send("json://127.0.0.1:9/x", "t", "b", "text")
    assert not outcome.ok and not outcome.permanent


def test_it_reads_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120", NOW.timestamp()) == 120.0
    assert parse_retry_after("Mon, 02 Nov 2026 08:00:30 GMT", NOW.timestamp()) == 30.0
    assert parse_retry_after("soon", NOW.timestamp()) is None


async def test_it_keeps_the_slack_token_out_of_apprise_debug_logs(
    slack_to_hook: HookServer,
) -> None:
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    try:
        outcome = await apprise_send("slack://TSECRET1/BSECRET2/CSECRET3token/", "t", "body",
                                     "markdown")
    finally:
        log.configure("warning", stream=io.StringIO())
    assert outcome.ok
    output = stream.getvalue()
    assert "Loaded Slack URL" in output and "/services/" in output  # the URL was logged...
    assert "CSECRET3token" not in output  # ...with its token redacted
