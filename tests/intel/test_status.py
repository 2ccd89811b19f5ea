"""A feed's age and staleness, and the line the next digest carries for a stale feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from daemon.alerts.group import RunContext
from daemon.alerts.outbox import plan
from daemon.alerts.route import route_keys
from daemon.config_types import Config, FeedConfig, ReceiverConfig, RouteConfig, Secret
from daemon.intel.status import stale_notices, state_of
from daemon.model import ChangeEvent, ChangeKind, FindingKey, Reason, Severity

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
KEV = FeedConfig(name="kev", url="https://example.org/kev.json", stale_after=timedelta(days=3))


def row(age: timedelta | None, error: str = "") -> SimpleNamespace:
    return SimpleNamespace(version="2025.08.25", fetched_at=NOW - age if age else None,
                           last_error=error)


@pytest.mark.parametrize("stored, stale", [
    (row(timedelta(hours=5)), False),
    (row(timedelta(days=4), "feed kev: GET …: HTTP 503"), True),
    (row(None, "feed kev: GET …: ConnectError"), True),
    (None, True),
], ids=["fresh", "old", "never-good", "never-tried"])
def test_a_feed_is_stale_past_stale_after_or_without_a_good_copy(stored: object,
                                                                  stale: bool) -> None:
    assert state_of(KEV, stored, NOW).stale is stale


def test_the_next_digest_says_a_feed_is_stale() -> None:
    notices = stale_notices([state_of(KEV, row(timedelta(days=4), "HTTP 503"), NOW)])
    assert notices == ("feed kev is stale: its last good copy (2025.08.25) is 4d old; "
                       "last error: HTTP 503",)
    route = RouteConfig(("team",), group="digest", min_severity=Severity.LOW)
    config = Config(receivers=(ReceiverConfig("team", (Secret("json://127.0.0.1:9/x",
                                                              "literal"),)),),
                    routes=(route,), feeds=(KEV,))
    [key] = route_keys(config.routes)
    event = ChangeEvent(ChangeKind.NEW, Reason.NEW_IMAGE,
                        FindingKey("prod", "payments", "api", "CVE-2025-4802", "libc6"),
                        Severity.HIGH, NOW, fix_version="2.36-9+deb12u11")
    planned = plan(config, events=[(1, event)], scan_problems=[], problems=[],
                   cursors={key: (0, 0, None)}, due_routes=[key],
                   run_context=RunContext(name="nightly", feed_notices=notices), now=NOW)
    [message] = planned.messages
    assert list(message.notices) == list(notices)
