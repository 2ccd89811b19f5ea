from __future__ import annotations

from datetime import timedelta

import pytest
from alertkit import NOW, config, event

from daemon.alerts.events import OpenFinding, OverdueFinding, Reminder, ScanProblem
from daemon.alerts.route import legacy_keys, route_items, route_keys, unmatched_routes
from daemon.config_types import RouteConfig
from daemon.model import ChangeKind, Reason, Severity

ALL = ("new", "fix_available", "fixed", "severity_up", "severity_down", "reopened",
       "sla_overdue", "scan_failed", "scanner_unavailable", "rebuild_available",
       "known_exploited", "exploit_likely")


def targets(items, *routes):  # type: ignore[no-untyped-def]
    """(receiver, route by position as "route<N>", escalation) of each delivery."""
    position = {k: r.name or f"route{i + 1}" for i, (k, r) in enumerate(zip(route_keys(routes),
                                                                          routes, strict=True))}
    return [(d.receiver, position[d.route], d.escalation) for d in route_items(items, routes)]


@pytest.mark.parametrize(
    ("route", "item", "expected"),
    [
        (RouteConfig(("a",)), event(), [("a", "route1", False)]),
        (RouteConfig(("a",), min_severity=Severity.CRITICAL), event(), []),
        (RouteConfig(("a",), min_severity=Severity.NONE, events=ALL),
         event(severity=Severity.NONE), [("a", "route1", False)]),
        (RouteConfig(("a",), registries=("stage-*",)), event(), []),
        (RouteConfig(("a",), projects=("pay*",)), event(), [("a", "route1", False)]),
        (RouteConfig(("a",), repositories=("web/*",)), event(), []),
        (RouteConfig(("a",), repositories=("payments/a*",)), event(), [("a", "route1", False)]),
        (RouteConfig(("a",), events=("fixed",)), event(), []),
        (RouteConfig(("a",), events=("fixed",)),
         event(kind=ChangeKind.FIXED, reason=Reason.FIXED_BY_REBUILD), [("a", "route1", False)]),
        (RouteConfig(("a",), events=("severity_up",)),
         event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
               previous=Severity.MEDIUM), [("a", "route1", False)]),
        (RouteConfig(("a",), events=("severity_up",)),
         event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
               severity=Severity.HIGH, previous=Severity.CRITICAL), []),
        (RouteConfig(("a",)),
         event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
               previous=Severity.MEDIUM), [("a", "route1", False)]),
        (RouteConfig(("a",)),
         event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
               severity=Severity.HIGH, previous=Severity.CRITICAL), []),
        (RouteConfig(("a",), events=("severity_down",), min_severity=Severity.LOW),
         event(kind=ChangeKind.SEVERITY_CHANGED, reason=Reason.RESCORED,
               severity=Severity.HIGH, previous=Severity.CRITICAL), [("a", "route1", False)]),
        (RouteConfig(("a",), min_severity=Severity.CRITICAL),
         ScanProblem("scan_failed", "prod-harbor", "payments", "api"), [("a", "route1", False)]),
        (RouteConfig(("a",), projects=("other",), events=("scanner_unavailable",)),
         ScanProblem("scanner_unavailable", "prod-harbor"), [("a", "route1", False)]),
        (RouteConfig(("a",), escalate_to=("boss",), events=("new",)),
         OverdueFinding(event().finding, Severity.HIGH, NOW - timedelta(days=40),
                        timedelta(days=30)), [("boss", "route1", True)]),
        (RouteConfig(("a",), escalate_to=("boss",)),
         OverdueFinding(event().finding, Severity.HIGH, NOW - timedelta(days=40),
                        timedelta(days=30)), [("a", "route1", False), ("boss", "route1", True)]),
        (RouteConfig(("a",)), Reminder(OpenFinding(event().finding, Severity.HIGH)), []),
        (RouteConfig(("a",), repeat_open_every=timedelta(days=7)),
         Reminder(OpenFinding(event().finding, Severity.HIGH)), [("a", "route1", False)]),
    ],
    ids=["defaults-take-new-high", "below-min-severity", "none-threshold-takes-none",
         "registry-glob-misses", "project-glob-hits", "repository-glob-misses",
         "project-slash-repository-glob-hits",
         "event-not-listed", "fixed-listed", "severity-up", "severity-down-is-not-up",
         "defaults-take-severity-up", "defaults-leave-severity-down",
         "severity-down-listed", "scan-problem-ignores-threshold",
         "registry-wide-problem-ignores-project-glob", "overdue-escalates-only",
         "overdue-to-both", "no-reminders-without-repeat", "reminders-with-repeat"],
)
def test_it_routes_one_item(route, item, expected):  # type: ignore[no-untyped-def]
    assert targets([item], route) == expected


def test_it_stops_at_the_first_matching_route():
    first = RouteConfig(("a",), name="first")
    second = RouteConfig(("b",), name="second")
    assert targets([event()], first, second) == [("a", "first", False)]


def test_it_fans_out_when_a_route_continues():
    first = RouteConfig(("a",), name="first", continue_=True)
    second = RouteConfig(("b", "a"), name="second")
    assert targets([event()], first, second) == [("a", "first", False), ("b", "second", False)]


def test_it_skips_a_route_in_scope_whose_events_do_not_take_the_item():
    first = RouteConfig(("a",), events=("fixed",))
    second = RouteConfig(("b",))
    assert targets([event()], first, second) == [("b", "route2", False)]


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ((RouteConfig(("a",)),), []),
        ((RouteConfig(("a",), events=()),), ["route[1]: no events, so it can never match"]),
        ((RouteConfig(("a",), registries=("stage-*",)),),
         ["route[1].registries: ['stage-*'] names no configured registry "
          "(configured: prod-harbor)"]),
        ((RouteConfig(("nobody",), name="r"),), ["route[r].receivers: unknown receiver 'nobody'"]),
        ((RouteConfig(("a",), name="all", events=ALL, min_severity=Severity.NONE),
          RouteConfig(("b",), name="late")),
         ["route[late]: can never match: the earlier route[all] (without continue) "
          "takes everything it "
          "would"]),
        ((RouteConfig(("a",), name="all", events=ALL, min_severity=Severity.NONE,
                      continue_=True), RouteConfig(("b",), name="late")), []),
        ((RouteConfig(("a",), name="crit", min_severity=Severity.CRITICAL),
          RouteConfig(("b",), name="late")),
         ["route[late]: never receives new, fix_available, severity_up, reopened, sla_overdue, "
          "scan_failed at Critical and above: the earlier route[crit] (without continue) takes "
          "them first; set continue = true on route[crit] or move this route above it"]),
        ((RouteConfig(("a",), events=("new", "bogus")),),
         [f"route[1].events: unknown bogus; valid: {', '.join(ALL)}"]),
    ],
    ids=["fine", "no-events", "registry-glob-matches-nothing", "unknown-receiver", "shadowed",
         "continue-is-not-shadowing", "narrower-first-takes-its-severities", "unknown-event"],
)
def test_it_reports_routes_that_cannot_match(routes, expected):  # type: ignore[no-untyped-def]
    cfg = config(*routes)
    if expected and "unknown receiver" in expected[0]:
        cfg = config(*routes, receivers=())
    assert unmatched_routes(cfg) == expected


def test_a_routes_identity_survives_inserting_a_route_before_it():
    first, second = RouteConfig(("a",)), RouteConfig(("b",), min_severity=Severity.MEDIUM)
    before = route_keys([first, second])
    after = route_keys([RouteConfig(("c",), projects=("web",)), first, second])
    assert after[1:] == before
    assert len(set(after)) == 3 and all(k.startswith("route-") for k in after)


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ([RouteConfig(("a",), name="secops")], ["secops"]),
        ([RouteConfig(("a",)), RouteConfig(("b",))], None),  # same matchers: told apart
    ],
    ids=["name-wins", "same-matchers-suffixed"],
)
def test_it_names_routes_by_name_else_by_matchers(routes, expected):  # type: ignore[no-untyped-def]
    keys = route_keys(routes)
    if expected is not None:
        assert keys == expected
    else:
        assert keys[1] == f"{keys[0]}-2"


def test_it_maps_unnamed_routes_to_the_positional_keys_older_versions_used():
    routes = [RouteConfig(("a",), name="secops"), RouteConfig(("b",))]
    assert legacy_keys(routes) == {route_keys(routes)[1]: "route2"}


def test_it_warns_when_an_earlier_route_takes_what_a_later_one_wants():
    """The Medium-route case: the second route silently never gets Critical or High."""
    cfg = config(RouteConfig(("slack",), min_severity=Severity.HIGH),
                 RouteConfig(("mail",), min_severity=Severity.MEDIUM))
    [warning] = unmatched_routes(cfg)
    assert warning.startswith("route[2]: never receives new,")
    assert "at High and above: the earlier route[1] (without continue)" in warning
    fanned = config(RouteConfig(("slack",), min_severity=Severity.HIGH, continue_=True),
                    RouteConfig(("mail",), min_severity=Severity.MEDIUM))
    assert unmatched_routes(fanned) == []


def test_it_warns_about_a_receiver_no_route_uses():
    from daemon.config_types import ReceiverConfig, Secret
    receivers = tuple(ReceiverConfig(n, (Secret(f"json://127.0.0.1:1/{n}", "literal"),))
                      for n in ("a", "spare"))
    assert unmatched_routes(config(RouteConfig(("a",)), receivers=receivers)) == [
        "receiver[spare]: no route sends to it"]
