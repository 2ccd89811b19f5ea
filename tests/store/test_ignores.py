"""One ignore evaluator (daemon/ignores.py): the same answer for history, findings and alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from daemon.alerts.silence import apply_silences
from daemon.config_types import IgnoreConfig
from daemon.ignores import IgnoreRules
from daemon.model import ChangeEvent, ChangeKind, CveAllowlist, FindingKey, Reason, Severity
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, success

KEY = FindingKey("prod", "legacy", "billing/api", "CVE-2023-1234", "openssl")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def rule(**kw: object) -> IgnoreConfig:
    values: dict[str, object] = {"reason": "feature disabled", "expires": date(2027, 1, 31)}
    values.update(kw)
    return IgnoreConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rules", "allow", "now", "hidden"), [
    pytest.param([rule(vulnerability="CVE-2023-1234")], [], NOW, True, id="by_vulnerability"),
    pytest.param([rule(vulnerability="cve-2023-1234")], [], NOW, True, id="id_any_case"),
    pytest.param([rule(vulnerability="CVE-2023-*")], [], NOW, True, id="vulnerability_glob"),
    pytest.param([rule(vulnerability="CVE-2024-*")], [], NOW, False, id="glob_elsewhere"),
    pytest.param([rule(package="openssl")], [], NOW, True, id="by_package"),
    pytest.param([rule(package="open*")], [], NOW, True, id="package_glob"),
    pytest.param([rule(vulnerability="CVE-2023-1234", package="zlib")], [], NOW, False,
                 id="both_must_match"),
    pytest.param([rule(vulnerability="CVE-2023-1234", repositories=("legacy/*",))], [], NOW,
                 True, id="repository_glob_with_project"),
    pytest.param([rule(vulnerability="CVE-2023-1234", repositories=("billing/*",))], [], NOW,
                 True, id="repository_glob_without_project"),
    pytest.param([rule(vulnerability="CVE-2023-1234", repositories=("web/*",))], [], NOW,
                 False, id="repository_glob_elsewhere"),
    pytest.param([rule(vulnerability="CVE-2023-1234", registries=("staging",))], [], NOW,
                 False, id="other_registry"),
    pytest.param([rule(vulnerability="CVE-2023-1234", expires=date(2026, 6, 1))], [], NOW,
                 True, id="active_on_its_expiry_day"),
    pytest.param([rule(vulnerability="CVE-2023-1234", expires=date(2026, 6, 1))], [],
                 datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC), True,
                 id="active_to_the_last_second_of_the_day"),
    pytest.param([rule(vulnerability="CVE-2023-1234", expires=date(2026, 6, 1))], [],
                 datetime(2026, 6, 2, 0, 0, tzinfo=UTC), False, id="expired_the_day_after"),
    pytest.param([rule(vulnerability="CVE-2023-1234", expires=date(2026, 6, 1))], [],
                 datetime.fromisoformat("2026-06-01T22:30:00-05:00"), False,
                 id="the_day_is_the_utc_day"),
    pytest.param([], [CveAllowlist("prod", frozenset({"CVE-2023-1234"}))], NOW, True,
                 id="system_allowlist"),
    pytest.param([], [CveAllowlist("prod", frozenset({"CVE-2023-1234"}), project="web")], NOW,
                 False, id="other_project_allowlist"),
    pytest.param([], [CveAllowlist("prod", frozenset({"CVE-2023-1234"}),
                                   expires_at=datetime(2026, 5, 1, tzinfo=UTC))], NOW, False,
                 id="expired_allowlist"),
])
def test_it_decides_which_findings_are_ignored(
    rules: list[IgnoreConfig], allow: list[CveAllowlist], now: datetime, hidden: bool,
) -> None:
    assert IgnoreRules(tuple(rules), tuple(allow)).ignored(KEY, now) is hidden


def test_it_keeps_only_the_allowlists_of_registries_that_use_them() -> None:
    from daemon.config_types import Config, RegistryConfig, Secret

    regs = tuple(RegistryConfig(name=n, url="http://h", username="u", password=Secret("p", "x"),
                                use_harbor_allowlist=(n == "prod")) for n in ("prod", "test"))
    lists = [CveAllowlist("prod", frozenset({"CVE-1"})), CveAllowlist("test", frozenset({"CVE-1"}))]
    rules = IgnoreRules.from_config(Config(registries=regs), lists)
    assert [a.registry for a in rules.allowlists] == ["prod"]
    fresh = rules.with_allowlists("prod", [CveAllowlist("prod", frozenset({"CVE-2"}))])
    assert [sorted(a.cve_ids) for a in fresh.allowlists] == [["CVE-2"]]


def _event(key: FindingKey) -> ChangeEvent:
    return ChangeEvent(ChangeKind.NEW, Reason.ADVISORY_PUBLISHED, key, Severity.HIGH, NOW)


@pytest.mark.parametrize(("day", "hidden"), [
    pytest.param(9, True, id="on_the_expiry_day"),
    pytest.param(10, False, id="the_day_after"),
])
def test_history_findings_and_alerts_agree_on_the_expiry_day(
    tmp_path: Path, day: int, hidden: bool
) -> None:
    """One rule (a vulnerability glob, expiring on day 9): the ignored mark history keeps,
    what `findings` lists and what alerts silence are the same on and after that day."""
    expires = at(9).date()
    rules = IgnoreRules((rule(vulnerability="CVE-2024-*", expires=expires),))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scan(success("sha256:a", ["CVE-2024-1:openssl:1.0", "CVE-2025-2:zlib:1.0"],
                                  at(0)), at(0), rules)
        moment = at(day).replace(hour=23, minute=59)
        store.reconcile_ignores(rules, moment)
        marked = {f.key.vulnerability for f in store.open_findings(include_ignored=True)
                  if f.ignored}
        listed = {f.key.vulnerability
                  for f in store.open_findings(rules=rules, now=moment)}
        key = next(f.key for f in store.open_findings(include_ignored=True)
                   if f.key.vulnerability == "CVE-2024-1")
        _, silenced = apply_silences([_event(key)], rules, moment)
    finally:
        store.close()
    assert (marked == {"CVE-2024-1"}) is hidden
    assert ("CVE-2024-1" not in listed) is hidden
    assert "CVE-2025-2" in listed
    assert bool(silenced) is hidden


def test_an_expired_rule_is_announced_once_and_only_when_it_expires(tmp_path: Path) -> None:
    rules = IgnoreRules((rule(vulnerability="CVE-1", expires=at(9).date()),))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.0"], at(0)),
                          at(0), rules)
        events = store.record_scan(
            success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.0", "CVE-1:curl:8"], at(1)),
            at(1), rules)
        assert [(e.finding.package, e.ignored) for e in events] == [("curl", True)]
        assert [f.key.vulnerability for f in store.open_findings()] == ["CVE-2"]
        assert store.reconcile_ignores(rules, at(5)) == []
        assert store.reconcile_ignores(rules, at(9)) == []  # still active all that day
        back = store.reconcile_ignores(rules, at(10))
        assert sorted((e.kind.value, e.reason.value, e.finding.package) for e in back) == [
            ("reopened", "ignore_expired", "curl"), ("reopened", "ignore_expired", "openssl")]
        assert store.reconcile_ignores(rules, at(11)) == []  # once
        assert len(store.open_findings()) == 3
        history = store.history(REG, "payments", "api")
        assert [c.reason.value for c in history[-1].changes] == ["ignore_expired"]
    finally:
        store.close()


def test_a_removed_rule_is_announced_and_a_new_rule_only_marks(tmp_path: Path) -> None:
    first = IgnoreRules((rule(package="zlib"),))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.0"], at(0)),
                          at(0), first)
        second = IgnoreRules((rule(package="openssl"),))  # zlib's rule removed, openssl's added
        back = store.reconcile_ignores(second, at(1))
        assert [(e.reason.value, e.finding.package) for e in back] == [
            ("ignore_expired", "zlib")]
        assert {f.key.package: f.ignored for f in store.open_findings(include_ignored=True)} == {
            "openssl": True, "zlib": False}
        assert store.reconcile_ignores(second, at(2)) == []
    finally:
        store.close()


def test_allowlists_last_read_stay_in_force_across_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    lists = (CveAllowlist("prod", frozenset({"CVE-1", "CVE-3"}), None, "payments"),
             CveAllowlist("prod", frozenset({"CVE-9"}),
                          datetime(2027, 1, 1, tzinfo=UTC)))
    store = open_store(url)
    try:
        store.save_allowlists("prod", lists, at(0))
        store.save_allowlists("other", [CveAllowlist("other", frozenset({"CVE-5"}))], at(0))
    finally:
        store.close()
    store = open_store(url)
    try:
        assert set(store.load_allowlists()) == {*lists,
                                                CveAllowlist("other", frozenset({"CVE-5"}))}
        store.save_allowlists("prod", [], at(1))  # a later read: Harbor's lists are empty now
        assert [a.registry for a in store.load_allowlists()] == ["other"]
    finally:
        store.close()


def test_a_rule_added_to_the_config_hides_at_once_in_findings(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.0"], at(0)),
                          at(0))
        rules = IgnoreRules((rule(package="zlib"),))
        now = at(0) + timedelta(hours=1)
        shown = store.open_findings(rules=rules, now=now)
        every = store.open_findings(rules=rules, now=now, include_ignored=True)
    finally:
        store.close()
    assert [f.key.package for f in shown] == ["openssl"]
    assert [(f.key.package, f.ignored, f.ignore_reason) for f in every
            if f.key.package == "zlib"] == [
        ("zlib", True, "feature disabled (ignored until 2027-01-31)")]
