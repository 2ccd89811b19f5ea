"""First sight: a new repository is announced once, as a summary; a registry's first run is not.

Against a real SQLite store: history records one summary event per first-scanned artifact
(kind new, reason first_sight, no finding of its own); alerts must read it, route it by its
highest severity and render it as a "first seen" line, never CVE by CVE.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alertkit import event, first_sight
from structlog.testing import capture_logs

from daemon.alerts.group import RunContext, first_run_registries
from daemon.alerts.outbox import build_and_queue
from daemon.config_types import Config, ReceiverConfig, RouteConfig, Secret
from daemon.model import Severity
from daemon.store import outbox as store_outbox
from tests.store.store_helpers import REG, artifact, at, success

OLD = ["CVE-2020-0001:zlib:1.0:1.1:High", "CVE-2020-0002:curl:7.0::Medium"]
BRANDNEW = ["CVE-2026-0100:openssl:3.0.1:3.0.9:Critical", "CVE-2026-0101:openssl:3.0.1::High",
            "CVE-2026-0102:glibc:2.36::High", "CVE-2026-0103:bash:5.2::Low"]


def make_config(*, min_severity: Severity = Severity.HIGH,
                events: tuple[str, ...] = ("new",)) -> Config:
    url = Secret("json://127.0.0.1:9/hook", "literal")  # nothing is sent in these tests
    return Config(receivers=(ReceiverConfig("secops", (url,)),),
                  routes=(RouteConfig(("secops",), name="sec", events=events,
                                      min_severity=min_severity),))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    """The registry's first run (payments/api and payments/web), already claimed."""
    from daemon.store.db import open_store

    s = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    s.record_inventory(REG, [artifact("sha256:a", "1.0"),
                             artifact("sha256:w", "1.0", repository="web")], at(0))
    s.record_scans([success("sha256:a", OLD, at(0)),
                    success("sha256:w", OLD[:1], at(0), repository="web")], at(0))
    yield s
    s.close()


def queue(store: Any, config: Config, when: Any) -> list[dict[str, Any]]:
    build_and_queue(store, config, run_context=RunContext(name="nightly"), now=when)
    return [json.loads(r.payload["body"]) for r in store_outbox.listing(store)]


def push_brandnew(store: Any, *, old_cve: bool = False) -> None:
    """A later run: a new repository payments/brandnew, and maybe a new CVE in payments/api."""
    store.record_inventory(REG, [artifact("sha256:a", "1.0"),
                                 artifact("sha256:w", "1.0", repository="web"),
                                 artifact("sha256:n", "1.0", repository="brandnew")], at(1))
    results = [success("sha256:n", BRANDNEW, at(1), repository="brandnew")]
    if old_cve:
        results.append(success("sha256:a", [*OLD, "CVE-2026-0001:openssl:3.0.1:3.0.2:Critical"],
                               at(1)))
    store.record_scans(results, at(1))


@pytest.fixture
def info_logs() -> Iterator[None]:
    """INFO events reach capture_logs whatever level an earlier CLI test configured."""
    import logging

    import structlog

    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    yield
    structlog.configure(**saved)


def test_it_sends_nothing_for_the_registry_first_run_and_says_so_in_the_log(  # type: ignore[no-untyped-def]
        store, info_logs) -> None:
    with capture_logs() as logs:
        assert queue(store, make_config(min_severity=Severity.NONE), at(0)) == []
    [quiet] = [e for e in logs if e["event"] == "alerts_first_sight_quiet"]
    assert (quiet["registry"], quiet["findings"], quiet["summaries"]) == (REG, 3, 2)


def test_it_announces_a_new_repository_once_as_a_summary(store) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    queue(store, config, at(0))
    push_brandnew(store)
    [doc] = queue(store, config, at(1) + timedelta(minutes=10))
    assert doc["first_seen"] == [{
        "registry": REG, "project": "payments", "repository": "brandnew", "findings": 4,
        "highest_severity": "Critical",
        "severity_counts": {"Critical": 1, "High": 2, "Low": 1}, "link": None,
        "details_command": "scanwatch findings --registry prod --project payments "
                           "--repository brandnew"}]
    assert doc["fix_now"] == [] and doc["no_fix"] == []  # never CVE by CVE
    assert "1 repository first seen" in doc["subject"]
    assert "CVE-2026-0100" not in json.dumps(doc)
    assert len(queue(store, config, at(1) + timedelta(minutes=20))) == 1  # and only once


def test_it_shows_a_new_repository_beside_the_changes_of_known_ones(store) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    queue(store, config, at(0))
    push_brandnew(store, old_cve=True)
    [doc] = queue(store, config, at(1) + timedelta(minutes=10))
    assert [f["repository"] for f in doc["first_seen"]] == ["brandnew"]
    assert [v["id"] for a in doc["fix_now"] for v in a["vulnerabilities"]] == ["CVE-2026-0001"]


@pytest.mark.parametrize(
    ("min_severity", "events", "announced"),
    [(Severity.CRITICAL, ("new",), True),
     (Severity.NONE, ("new",), True),
     (Severity.HIGH, ("fix_available", "fixed"), False)],
    ids=["highest-reaches-critical", "any-severity", "route-without-new"],
)
def test_it_routes_a_summary_by_its_event_and_highest_severity(  # type: ignore[no-untyped-def]
        store, min_severity, events, announced) -> None:
    config = make_config(min_severity=min_severity, events=events)
    queue(store, config, at(0))
    push_brandnew(store)
    docs = queue(store, config, at(1) + timedelta(minutes=10))
    assert bool(docs) is announced


def test_it_routes_below_threshold_summaries_nowhere(store) -> None:  # type: ignore[no-untyped-def]
    config = make_config(min_severity=Severity.CRITICAL)
    queue(store, config, at(0))
    store.record_inventory(REG, [artifact("sha256:a", "1.0"),
                                 artifact("sha256:w", "1.0", repository="web"),
                                 artifact("sha256:m", "1.0", repository="mild")], at(1))
    store.record_scans([success("sha256:m", BRANDNEW[1:], at(1), repository="mild")], at(1))
    assert queue(store, config, at(1) + timedelta(minutes=10)) == []


def test_preview_reads_the_summary_as_the_run_would(store) -> None:  # type: ignore[no-untyped-def]
    queue(store, make_config(), at(0))
    push_brandnew(store)
    batch = store_outbox.peek(store, ["sec"])
    [summary] = [e for _, e in batch.events if not e.finding.vulnerability]
    assert (summary.finding.repository, summary.count, summary.severity) == (
        "brandnew", 4, Severity.CRITICAL)
    assert batch.first_sight.counts[(REG, "payments", "brandnew")] == {
        Severity.CRITICAL: 1, Severity.HIGH: 2, Severity.LOW: 1}


@pytest.mark.parametrize(
    ("events", "known", "first_run"),
    [([first_sight("a", registry="r"), first_sight("b", registry="r")],
      {"r": frozenset({("library", "a"), ("library", "b")})}, {"r"}),
     ([first_sight("a", registry="r")],
      {"r": frozenset({("library", "a"), ("library", "old")})}, set()),
     ([first_sight("a", registry="r"),
       event("CVE-2026-0001", registry="r", project="library", repository="b")],
      {"r": frozenset({("library", "a"), ("library", "b")})}, set()),
     ([first_sight("a", registry="r"), first_sight("x", registry="s")],
      {"r": frozenset({("library", "a")}), "s": frozenset({("library", "x"), ("library", "y")})},
      {"r"})],
    ids=["all-repositories-first-seen", "an-older-repository-has-findings",
         "a-real-change-in-the-same-registry", "decided-per-registry"],
)
def test_it_tells_a_registry_first_run_from_a_new_repository(events, known, first_run) -> None:  # type: ignore[no-untyped-def]
    assert first_run_registries(events, known) == first_run

