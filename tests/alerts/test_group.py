from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from alertkit import NOW, event, sample_items

from daemon.alerts.events import OpenFinding, Reminder
from daemon.alerts.group import RunContext, due_reminders, group, harbor_link
from daemon.alerts.route import Delivery, route_items, route_keys
from daemon.config_types import RouteConfig
from daemon.model import ChangeKind, FindingKey, Reason, Severity

CTX = RunContext(name="nightly", registry_urls={"prod-harbor": "https://harbor.example.com"},
                 project_ids={("prod-harbor", "payments"): 3},
                 images_checked={"prod-harbor": 120})


def ids() -> object:
    counter = itertools.count(1)
    return lambda: f"m{next(counter)}"


def messages(items, *routes, **kw):  # type: ignore[no-untyped-def]
    routes = routes or (RouteConfig(("secops",), events=("new", "fix_available", "fixed",
                                                         "sla_overdue", "scan_failed")),)
    return group(route_items(items, routes), CTX, NOW, new_id=ids(), **kw)  # type: ignore[arg-type]


def test_it_makes_one_remediation_action_per_package_version_with_the_fix_for_all():
    [m] = messages(sample_items())
    openssl = m.fix_now[0]
    assert (openssl.package, openssl.installed_version, openssl.fix_version) == (
        "openssl", "3.0.13-1~deb12u1", "3.0.15-1~deb12u1")
    assert [(v.id, v.severity) for v in openssl.vulnerabilities] == [
        ("CVE-2024-0001", Severity.CRITICAL), ("CVE-2024-0002", Severity.HIGH)]
    assert [i.name for i in openssl.images] == ["payments/api", "web/admin", "web/front"]
    assert openssl.images[0].tags == ("1.4.2", "latest")
    assert openssl.shared_images == 3  # three images share the version: base-image hint


def test_it_sorts_sections_fix_now_no_fix_fixed_overdue_problems():
    [m] = messages(sample_items())
    assert [a.package for a in m.fix_now] == ["openssl", "zlib"]
    assert [a.package for a in m.no_fix] == ["glibc"]
    assert m.fixed is not None and m.fixed.findings == 2
    assert dict(m.fixed.reasons) == {"fixed_by_rebuild": 1, "image_removed": 1}
    assert [(o.vulnerability, o.open_days, o.deadline_days) for o in m.overdue] == [
        ("CVE-2024-0777", 12, 7)]
    assert [p.kind for p in m.problems] == ["scan_failed"]


def test_it_lists_the_fixes_when_they_cannot_be_ordered():
    items = [event("CVE-1", "lib", installed="abc", fix="def"),
             event("CVE-2", "lib", installed="abc", fix="xyz")]
    [m] = messages(items)
    assert (m.fix_now[0].fix_version, m.fix_now[0].candidate_fixes) == ("", ("def", "xyz"))


@pytest.mark.parametrize(
    ("package", "installed", "fixes", "expected"),
    [("curl", "7.74.0-1.3+deb11u7", ("7.74.0-1.3+deb11u8", "7.74.0-1.3+deb11u9"),
      "7.74.0-1.3+deb11u9"),
     ("busybox", "1.20.1-r2", ("1.20.1-r10", "1.20.1-r4"), "1.20.1-r10")],
    ids=["debian-security-updates", "alpine-releases"],
)
def test_the_upgrade_line_names_the_fix_that_covers_every_cve(
        package: str, installed: str, fixes: tuple[str, ...], expected: str) -> None:
    # Semver-first ordering read +deb11u9 as build metadata (equal to u8) and -r10 as a
    # pre-release below -r4: the message then named a fix that leaves a CVE open.
    items = [event(f"CVE-{n}", package, installed=installed, fix=fix)
             for n, fix in enumerate(fixes)]
    [m] = messages(items)
    assert [(a.package, a.fix_version, a.candidate_fixes) for a in m.fix_now] == [
        (package, expected, ())]


def test_it_sends_one_message_per_receiver_and_registry():
    items = [event(), event(registry="stage-harbor"), event("CVE-9", project="web")]
    route = RouteConfig(("a", "b"))
    got = messages(items, route)
    assert [(m.receiver, m.registry, m.id) for m in got] == [
        ("a", "prod-harbor", "m1"), ("a", "stage-harbor", "m2"),
        ("b", "prod-harbor", "m3"), ("b", "stage-harbor", "m4")]


def test_it_sends_nothing_for_an_empty_group_unless_a_heartbeat_is_asked():
    assert messages([]) == []
    [hb] = messages([], heartbeats=[("secops", "prod-harbor")])
    assert hb.kind == "heartbeat" and hb.heartbeat is not None
    assert hb.heartbeat.images_checked == 120


def test_it_escalates_overdue_findings_to_escalate_to_receivers():
    from daemon.alerts.events import OverdueFinding
    overdue = OverdueFinding(event().finding, Severity.HIGH, NOW - timedelta(days=40),
                             timedelta(days=30))
    route = RouteConfig(("team",), escalate_to=("boss",))
    got = {m.receiver: m for m in messages([overdue], route)}
    assert got["boss"].overdue[0].escalation and not got["team"].overdue[0].escalation


def test_it_records_which_findings_each_message_reports():
    fixed = event(kind=ChangeKind.FIXED, reason=Reason.FIXED_BY_REBUILD)
    [m] = messages([event(), fixed])
    assert m.findings == ((event().finding, "new", ""), (event().finding, "fixed", ""))


def test_it_reminds_only_when_repeat_open_every_elapsed_since_the_last_send():
    route = RouteConfig(("a",), repeat_open_every=timedelta(days=7))
    key = FindingKey("prod-harbor", "payments", "api", "CVE-1", "openssl")
    other = FindingKey("prod-harbor", "payments", "api", "CVE-2", "openssl")
    never = FindingKey("prod-harbor", "payments", "api", "CVE-3", "openssl")
    reminders = [Reminder(OpenFinding(k, Severity.HIGH)) for k in (key, other, never)]
    last = {("a", key): NOW - timedelta(days=8), ("a", other): NOW - timedelta(days=2)}
    every = {route_keys([route])[0]: timedelta(days=7)}
    due = due_reminders(reminders, lambda r: route_items([r], [route]), every,
                        last, NOW)
    assert [d.item.open.finding for d in due] == [key]  # type: ignore[union-attr]
    [m] = group(due, CTX, NOW, new_id=ids())  # type: ignore[arg-type]
    assert m.no_fix[0].reminder


def test_it_links_to_the_artifact_when_the_project_id_is_known_else_the_projects():
    assert harbor_link(CTX, "prod-harbor", "payments", "team/api", "sha256:ab") == (
        "https://harbor.example.com/harbor/projects/3/repositories/team%2Fapi/artifacts-tab/"
        "artifacts/sha256:ab")
    assert harbor_link(CTX, "prod-harbor", "web", "front") == (
        "https://harbor.example.com/harbor/projects")
    assert harbor_link(CTX, "elsewhere", "web", "front") == ""


def test_it_keeps_delivery_order_irrelevant_to_the_result():
    items = sample_items()
    a = messages(items)
    b = messages(list(reversed(items)))
    assert [m.fix_now for m in a] == [m.fix_now for m in b]
    assert isinstance(a[0].fix_now[0], type(b[0].fix_now[0]))
    assert Delivery  # imported for typing in helpers
