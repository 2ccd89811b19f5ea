"""Ignore rules and Harbor allowlists hide findings from alerts, keep their history, expire."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from daemon.config_types import IgnoreConfig
from daemon.model import CveAllowlist, FindingKey
from daemon.store.db import open_store
from daemon.store.ignores import ignore_reason
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
    pytest.param([rule(package="openssl")], [], NOW, True, id="by_package"),
    pytest.param([rule(vulnerability="CVE-2023-1234", package="zlib")], [], NOW, False,
                 id="both_must_match"),
    pytest.param([rule(vulnerability="CVE-2023-1234", repositories=("legacy/*",))], [], NOW,
                 True, id="repository_glob_with_project"),
    pytest.param([rule(vulnerability="CVE-2023-1234", repositories=("web/*",))], [], NOW,
                 False, id="repository_glob_elsewhere"),
    pytest.param([rule(vulnerability="CVE-2023-1234", registries=("staging",))], [], NOW,
                 False, id="other_registry"),
    pytest.param([rule(vulnerability="CVE-2023-1234", expires=date(2026, 6, 1))], [], NOW,
                 False, id="expired_on_its_date"),
    pytest.param([rule(vulnerability="CVE-2023-1234", expires=date(2026, 6, 2))], [], NOW,
                 True, id="day_before_expiry"),
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
    assert bool(ignore_reason(KEY, rules, allow, now)) is hidden


def test_an_expired_rule_brings_its_findings_back_as_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.set_ignores([rule(vulnerability="CVE-1", expires=at(10).date())])
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.0"], at(0)),
                          at(0))
        events = store.record_scan(
            success("sha256:a", ["CVE-1:openssl:1.0", "CVE-2:zlib:1.0", "CVE-1:curl:8"], at(1)),
            at(1))
        assert [(e.finding.package, e.ignored) for e in events] == [("curl", True)]
        assert [f.key.vulnerability for f in store.open_findings()] == ["CVE-2"]
        hidden = store.open_findings(include_ignored=True)
        assert sorted((f.key.package, f.ignored) for f in hidden) == [
            ("curl", True), ("openssl", True), ("zlib", False)]
        assert store.refresh_ignores(at(9)) == []
        back = store.refresh_ignores(at(10))
        assert sorted((e.kind.value, e.reason.value, e.finding.package) for e in back) == [
            ("reopened", "ignore_expired", "curl"), ("reopened", "ignore_expired", "openssl")]
        assert len(store.open_findings()) == 3
        history = store.history(REG, "payments", "api")
        assert [c.reason.value for c in history[-1].changes] == ["ignore_expired"]
    finally:
        store.close()
