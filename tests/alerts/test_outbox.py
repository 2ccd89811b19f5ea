"""The outbox against a real SQLite store and a real webhook server: queue, retry, dead-letter."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alertkit import seeded_store

from daemon.alerts.deliver import Backoff, deliver_pending
from daemon.alerts.group import RunContext
from daemon.alerts.outbox import build_and_queue
from daemon.config_types import Config, ReceiverConfig, RouteConfig, Secret
from daemon.store import outbox as store_outbox
from tests.store.store_helpers import at

NOW = at(1) + timedelta(minutes=10)


class Clock:
    """Virtual time: ``sleep`` advances it, so waits are checked without waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def make_config(port: int, *, max_age: timedelta = timedelta(days=1)) -> Config:
    url = Secret(f"json://127.0.0.1:{port}/hook", "literal")
    return Config(receivers=(ReceiverConfig("secops", (url,), max_age=max_age),),
                  routes=(RouteConfig(("secops",), name="sec",
                                      events=("new", "scan_failed")),))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = seeded_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield s
    s.close()


def queue(store, config):  # type: ignore[no-untyped-def]
    return build_and_queue(store, config, run_context=RunContext(name="nightly"), now=NOW)


def test_it_queues_one_message_per_receiver_and_claims_the_events_once(store, hook) -> None:  # type: ignore[no-untyped-def]
    config = make_config(hook.port)
    [first] = queue(store, config)
    assert queue(store, config) == []  # the cursor moved in the same transaction
    [row] = store_outbox.listing(store)
    assert (row.message_id, row.status) == (first, "pending")
    assert "CVE-2026-0000" in row.payload["body"] and "scan_failed" in row.payload["body"]


async def test_it_retries_500s_and_delivers_exactly_once(store, hook) -> None:  # type: ignore[no-untyped-def]
    hook.script = [(500, {}, b"boom")] * 3
    config = make_config(hook.port)
    queue(store, config)
    clock = Clock(NOW)
    report = await deliver_pending(store, config, now_fn=clock, sleep=clock.sleep,
                                   deadline=NOW + timedelta(hours=1), backoff=Backoff(base=1.0))
    assert (report.sent, report.retried, report.dead, report.pending) == (1, 3, 0, 0)
    assert len(hook.requests) == 4 and len(set(b for _, b in hook.requests)) == 1
    assert 3 <= sum(clock.sleeps) <= 7  # backoff 1, 2, 4 with jitter in [half, full]
    [row] = store_outbox.listing(store, "sent")
    assert row.attempts == 4
    notified = store_outbox.last_notified(store, ["secops"])
    assert {k.vulnerability for (_, k), told in notified.items()
            if any(t.kind == "new" for t in told)} == {
        "CVE-2026-0000", "CVE-2026-0001"}
    again = await deliver_pending(store, config, now_fn=clock, sleep=clock.sleep)
    assert again.sent == 0 and len(hook.requests) == 4


async def test_it_waits_as_long_as_retry_after_says(store, hook) -> None:  # type: ignore[no-untyped-def]
    hook.script = [(429, {"Retry-After": "42"}, b"slow down")]
    config = make_config(hook.port)
    queue(store, config)
    clock = Clock(NOW)
    report = await deliver_pending(store, config, now_fn=clock, sleep=clock.sleep,
                                   deadline=NOW + timedelta(hours=1))
    assert report.sent == 1 and clock.sleeps == [42.0]


async def test_it_dead_letters_a_message_the_receiver_refuses_for_good(store, hook) -> None:  # type: ignore[no-untyped-def]
    hook.script = [(404, {}, b"no such hook")]
    config = make_config(hook.port)
    queue(store, config)
    dead: list[tuple[str, str]] = []
    clock = Clock(NOW)
    report = await deliver_pending(store, config, now_fn=clock, sleep=clock.sleep,
                                   deadline=NOW + timedelta(hours=1),
                                   on_dead=lambda r, why: dead.append((r, why)))
    assert (report.sent, report.dead, len(hook.requests)) == (0, 1, 1)
    assert dead == [("secops", "permanent")]
    [row] = store_outbox.listing(store, "dead")
    assert row.last_error == "HTTP 404: refused for good"


async def test_it_dead_letters_after_max_age_when_the_receiver_stays_down(store) -> None:  # type: ignore[no-untyped-def]
    config = make_config(9, max_age=timedelta(minutes=30))  # nothing listens on port 9
    queue(store, config)
    dead: list[tuple[str, str]] = []
    clock = Clock(NOW)
    report = await deliver_pending(store, config, now_fn=clock, sleep=clock.sleep,
                                   deadline=NOW + timedelta(hours=2), backoff=Backoff(base=60),
                                   on_dead=lambda r, why: dead.append((r, why)))
    assert report.dead == 1 and report.sent == 0 and dead == [("secops", "max_age")]
    [row] = store_outbox.listing(store, "dead")
    assert row.attempts >= 2 and "older than max_age" in row.last_error


async def test_it_counts_no_attempt_when_it_dead_letters_an_old_message_unsent(store, hook) -> None:  # type: ignore[no-untyped-def]
    from structlog.testing import capture_logs

    config = make_config(hook.port, max_age=timedelta(minutes=30))
    queue(store, config)
    with capture_logs() as logs:
        report = await deliver_pending(store, config, now_fn=lambda: NOW + timedelta(hours=1))
    assert (report.dead, hook.requests) == (1, [])  # too old: nothing was sent
    [row] = store_outbox.listing(store, "dead")
    [dead] = [e for e in logs if e["event"] == "alert_dead_lettered"]
    assert row.attempts == dead["attempts"] == 0


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [(None, NOW, False),
     (datetime(2026, 11, 2, 7, 0, tzinfo=NOW.tzinfo), datetime(2026, 11, 2, 8, 0, 1,
                                                               tzinfo=NOW.tzinfo), True),
     (datetime(2026, 11, 2, 8, 0, 1, tzinfo=NOW.tzinfo), datetime(2026, 11, 2, 12, 0,
                                                                  tzinfo=NOW.tzinfo), False),
     (datetime(2026, 11, 6, 9, 0, tzinfo=NOW.tzinfo), datetime(2026, 11, 8, 9, 0,
                                                               tzinfo=NOW.tzinfo), False)],
    ids=["first-pass-starts-the-clock", "cron-fired-since", "not-yet", "weekend-skipped"],
)
def test_a_digest_is_due_when_its_cron_fired_since_the_last_one(last, now, due) -> None:  # type: ignore[no-untyped-def]
    from daemon.alerts.outbox import digest_due

    route = RouteConfig(("a",), group="digest", digest_cron="0 8 * * 1-5")
    assert digest_due(route, last, now) is due


def test_a_digest_route_queues_nothing_until_its_cron_fires_then_everything_since(  # type: ignore[no-untyped-def]
    store, hook
) -> None:
    url = Secret(f"json://127.0.0.1:{hook.port}/hook", "literal")
    config = Config(receivers=(ReceiverConfig("secops", (url,)),),
                    routes=(RouteConfig(("secops",), name="daily", group="digest",
                                        digest_cron="0 8 * * *", events=("new",)),))
    ctx = RunContext(name="nightly")
    assert build_and_queue(store, config, run_context=ctx, now=NOW) == []
    assert build_and_queue(store, config, run_context=ctx, now=NOW + timedelta(hours=1)) == []
    [queued] = build_and_queue(store, config, run_context=ctx, now=NOW + timedelta(days=1))
    [row] = store_outbox.listing(store)
    assert row.message_id == queued and row.payload["kind"] == "digest"


def test_events_read_for_alerts_carry_the_tags_that_point_at_their_images(store) -> None:  # type: ignore[no-untyped-def]
    batch = store_outbox.peek(store, ["route1"])
    new = [ev for _, ev in batch.events if ev.finding.package == "openssl"]
    assert new and all(ev.digests == ("sha256:a",) for ev in new)
    assert all(ev.tags == ("1.0",) for ev in new)


def test_an_unnamed_route_keeps_the_cursor_its_position_had_before(store) -> None:  # type: ignore[no-untyped-def]
    """A database written when unnamed routes were keyed ``route<N>``: the route adopts that
    cursor (no replay, nothing lost) and the old row goes."""
    from sqlalchemy import select

    from daemon.alerts.route import route_keys
    from daemon.store import tables as t

    route = RouteConfig(("secops",), events=("new", "scan_failed"))
    config = Config(receivers=make_config(1).receivers, routes=(route,))
    last_event = store_outbox.peek(store, ["route1"]).max_event_id
    assert store_outbox.claim_and_queue(store, ["route1"], lambda batch: batch.advance.update(
        {"route1": store_outbox.Cursor("route1", last_event, 0, None)}), NOW) == []
    [queued] = queue(store, config)  # every event was read: only the failed scan is news
    [row] = store_outbox.listing(store)
    assert row.message_id == queued and "scan_failed" in row.payload["body"]
    assert "CVE-2026-0000" not in row.payload["body"]
    with store.engine.connect() as conn:
        routes = {r for (r,) in conn.execute(select(t.alert_cursor.c.route))}
    assert routes == set(route_keys([route]))
