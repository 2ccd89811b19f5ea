"""Rendering pinned by golden files; set SCANWATCH_UPDATE_GOLDEN=1 to rewrite them."""

from __future__ import annotations

import html
import itertools
import json
import os
import re
from pathlib import Path

import pytest
from alertkit import NOW, first_sight, hostile_items, sample_items

from daemon.alerts.group import RunContext, group
from daemon.alerts.message import Message
from daemon.alerts.render import SCHEMA, SLACK_MAX_CHARS, Rendered, render
from daemon.alerts.route import route_items
from daemon.config_types import EVENTS, RouteConfig
from daemon.model import ChangeKind, Reason, Severity

GOLDEN = Path(__file__).parent / "golden"
CTX = RunContext(name="nightly", registry_urls={"prod-harbor": "https://harbor.example.com"},
                 project_ids={("prod-harbor", "payments"): 3, ("prod-harbor", "library"): 7,
                              ("prod-harbor", "web"): 12},
                 first_seen_counts={("prod-harbor", "library", "brandnew"): {
                     Severity.CRITICAL: 2, Severity.HIGH: 5, Severity.MEDIUM: 13}})
ROUTE = RouteConfig(("secops",), events=EVENTS, min_severity=Severity.NONE)
EXTENSION = {"text": "txt", "slack": "slack.txt", "email": "html", "json": "json"}


def build(items) -> Message:  # type: ignore[no-untyped-def]
    counter = itertools.count(1)
    [m] = group(route_items(items, [ROUTE]), CTX, NOW, new_id=lambda: f"msg{next(counter)}",
                notices={"secops": ["2 ignores expire in 7 days: these 3 images will alert again"]})
    return m


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SCANWATCH_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with SCANWATCH_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["text", "slack", "email", "json"])
def test_it_renders_each_channel_as_its_golden_file(fmt: str) -> None:
    # Two first-seen repositories: one with per-severity counts, one with only the highest.
    items = sample_items() + [first_sight(), first_sight("tools", 3, severity=Severity.HIGH,
                                                         project="web")]
    r = render(build(items), fmt)
    body = r.body if fmt != "json" else json.dumps(json.loads(r.body), indent=2,
                                                      ensure_ascii=False) + "\n"
    check_golden(f"sample.{EXTENSION[fmt]}", f"{r.title}\n---\n{body}")


def test_it_writes_the_subject_with_fix_count_and_severities() -> None:
    r = render(build(sample_items()), "email")
    assert r.title == ("[scanwatch] prod-harbor: 1 Critical, 3 High (1 without a fix); 2 fixes;"
                       " 1 overdue; 2 fixed; 1 scan problem")


def test_the_subject_counts_a_critical_that_has_no_fix() -> None:
    from alertkit import event
    items = [event("CVE-2024-0001", severity=Severity.HIGH),
             event("CVE-2024-0009", "zlib", severity=Severity.CRITICAL, fix="")]
    r = render(build(items), "email")
    assert r.title == "[scanwatch] prod-harbor: 1 Critical (1 without a fix), 1 High; 1 fix"


@pytest.mark.parametrize(
    ("item", "words", "change", "reason"),
    [
        (dict(reason=Reason.ADVISORY_PUBLISHED), "newly published", "new",
         "advisory_published"),
        (dict(reason=Reason.NEW_IMAGE, tags=("2.0",)), "arrived with a push of 2.0", "new",
         "new_image"),
        (dict(kind=ChangeKind.FIX_AVAILABLE, reason=Reason.FIX_RELEASED), "fix released",
         "fix_available", "fix_released"),
        (dict(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
              previous=Severity.MEDIUM), "rescored Medium → High", "severity_changed",
         "rescored"),
        (dict(kind=ChangeKind.REOPENED, reason=Reason.REOPENED), "reopened", "reopened",
         "reopened"),
        (dict(kind=ChangeKind.REOPENED, reason=Reason.IGNORE_EXPIRED), "ignore expired",
         "reopened", "ignore_expired"),
    ],
    ids=["published", "pushed", "fix-released", "rescored", "reopened", "ignore-expired"],
)
def test_every_item_says_why_it_is_there(item, words, change, reason):  # type: ignore[no-untyped-def]
    from alertkit import event
    message = build([event(**item)])
    for fmt in ("text", "slack", "email"):
        assert f"CVE-2024-0001 (High, {words})" in visible(render(message, fmt)), fmt
    [vuln] = json.loads(render(message, "json").body)["fix_now"][0]["vulnerabilities"]
    assert (vuln["change"], vuln["reason"]) == (change, reason)


def test_the_base_image_hint_appears_only_where_a_fix_exists() -> None:
    from alertkit import event
    fixable = [event(repository=f"app{n}") for n in range(4)]
    stuck = [event("CVE-2024-0009", "zlib", fix="", repository=f"app{n}") for n in range(4)]
    message = build([*fixable, *stuck])
    assert message.fix_now[0].shared_images == 4
    assert message.no_fix[0].shared_images == 0
    assert render(message, "text").body.count("rebuild from the updated base image") == 1


def test_it_lists_every_vulnerability_id_in_text_and_email_but_cuts_slack() -> None:
    from alertkit import event
    items = [event(f"CVE-2024-{n:04d}", severity=Severity.HIGH) for n in range(40)]
    m = build(items)
    for fmt in ("text", "email", "json"):
        body = render(m, fmt).body
        assert all(f"CVE-2024-{n:04d}" in body for n in range(40)), fmt
    slack = render(m, "slack").body
    assert "CVE-2024-0039" not in slack and "+30 more" in slack


def visible(r: Rendered) -> str:
    """What a reader sees: Slack links by their label, HTML without its tags."""
    if r.format == "slack":
        return re.sub(r"<[^<>|]+\|([^<>]*)>", r"\1", r.body)
    if r.format == "email":
        return html.unescape(re.sub(r"<[^>]+>", "", r.body))
    return r.body


def test_each_id_links_to_its_advisory_and_details_to_public_url() -> None:
    from dataclasses import replace

    from alertkit import event
    items = [event("CVE-2024-0001"), event("GHSA-abcd-efgh-ijkl", "lodash")]
    message = build(items)
    doc = json.loads(render(message, "json").body)
    links = {v["id"]: v["link"] for a in doc["fix_now"] for v in a["vulnerabilities"]}
    assert links == {"CVE-2024-0001": "https://nvd.nist.gov/vuln/detail/CVE-2024-0001",
                     "GHSA-abcd-efgh-ijkl": "https://github.com/advisories/GHSA-abcd-efgh-ijkl"}
    assert doc["details_link"] is None
    assert "Details: scanwatch findings --registry prod-harbor" in render(message, "text").body
    served = replace(message, public_url="https://scanwatch.example.com/",
                     advisory_url="https://osv.dev/vulnerability/{id}")
    doc = json.loads(render(served, "json").body)
    assert doc["details_link"] == "https://scanwatch.example.com/findings?registry=prod-harbor"
    assert doc["fix_now"][0]["vulnerabilities"][0]["link"].startswith("https://osv.dev/")
    assert ("<https://scanwatch.example.com/findings?registry=prod-harbor|scanwatch findings>"
            in render(served, "slack").body)
    email = render(served, "email").body
    assert 'href="https://osv.dev/vulnerability/CVE-2024-0001"' in email
    assert 'href="https://scanwatch.example.com/findings?registry=prod-harbor"' in email


# Slack markup that scan data must never open: specials, mentions, links.
SLACK_MARKUP = re.compile(r"<[!@#]|<https?:|<mailto:")


def test_it_escapes_and_bounds_hostile_scan_data_in_every_format() -> None:
    m = build([*hostile_items(), first_sight("<!channel>`<@U42>", project="<https://evil|x>")])
    assert m.first_seen
    slack = render(m, "slack").body
    # Every "<" left in the Slack body opens one of our own Harbor links.
    ours = slack.replace("<https://harbor.example.com/", "").replace(
        "<https://nvd.nist.gov/vuln/detail/", "")
    assert not SLACK_MARKUP.search(ours)
    assert "&lt;!channel&gt;" in slack and "&lt;@U123&gt;" in slack
    assert "&lt;https://evil|click&gt;" in slack or "&lt;https://evil¦click&gt;" in slack
    assert "<!here>" not in slack and "ünïcødé-标签" in slack
    assert "&lt;!channel&gt;'&lt;@U42&gt;" in slack  # the first-seen line's code span too
    assert len(slack) <= SLACK_MAX_CHARS
    email = render(m, "email").body
    assert "<!channel>" not in email and "<script>" not in email and "<b>&" not in email
    assert "&lt;!channel&gt;" in email and "ünïcødé-标签" in email
    doc = json.loads(render(m, "json").body)
    assert doc["fix_now"][0]["package"] == "<!channel>"  # JSON carries data as data
    assert doc["fix_now"][0]["vulnerabilities"][0]["cvss_vector"] == "CVSS:3.1/<!channel>"
    assert "CVSS 9.8" in slack and "CVSS 9.8" in email  # the score, never the vector's text
    text = render(m, "text").body
    for fmt, body in (("slack", slack), ("email", email), ("text", text),
                      ("json", render(m, "json").body)):
        assert len(body) < 20_000, fmt  # 50 KB fields were clipped


def test_it_cuts_a_long_slack_message_with_a_pointer_to_scanwatch_findings() -> None:
    from alertkit import event
    items = [event(f"CVE-2024-{n:04d}", f"pkg{n}", severity=Severity.HIGH) for n in range(400)]
    slack = render(build(items), "slack").body
    assert len(slack) <= SLACK_MAX_CHARS
    assert slack.rstrip().endswith("All of it: `scanwatch findings --registry prod-harbor`")


def test_it_documents_its_schema_in_every_json_body() -> None:
    doc = json.loads(render(build(sample_items()), "json").body)
    assert doc["schema"] == SCHEMA
    assert set(doc) >= {"id", "kind", "registry", "fix_now", "no_fix", "fixed", "overdue",
                        "scan_problems", "notices", "heartbeat", "truncated"}
