"""The remediation plan counted in SQL (``store/actions.py``) is the plan of every finding
row (``remedy.plan_findings``), on real Trivy reports recorded into many repositories, with
ignore rules that cover some of a vulnerability's findings and a rule that has expired since
the stored flags were written; on SQLite and on PostgreSQL. The plan the writer materialises
for the pages (``store/plan.py``) is the counted one, worst rows included, for every filter,
whole or its first actions."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from daemon.commands.report_actions import action_json
from daemon.config_types import IgnoreConfig
from daemon.harbor.reports import load_report_file
from daemon.ignores import IgnoreRules
from daemon.model import ScannerInfo, ScanResult, ScanState, Severity
from daemon.remedy import Remedy, plan_findings
from daemon.store.carriers import carried
from daemon.store.db import Store, open_store
from daemon.store.findings import FindingQuery, heads_where
from tests.store.store_helpers import PROJECT, REG, artifact, at, ref

FIXTURES = ("debian-buster.json.golden", "alpine-310.json.golden", "npm.json.golden",
            "centos-7.json.golden")


def seed(url: str, trivy: Path) -> None:
    """Twenty-four repositories, two images each: every real report several times
    over (the worst findings of a plan in more repositories than ``carriers.carried`` reads
    whole), and a repository whose two images carry different reports (two installed versions
    of some packages)."""
    reports = [load_report_file(trivy / name) for name in FIXTURES]
    store = open_store(url)
    names = [(f"app-{n:02d}", n) for n in range(24)]
    store.record_inventory(REG, [artifact(f"sha256:{n:02d}{x}", x, repository=repo)
                                 for repo, n in names for x in ("a", "b")], at(0))
    for repo, n in names:
        for x, shift in (("a", 0), ("b", 1 if n == 3 else 0)):
            store.record_scan(ScanResult(
                ref(f"sha256:{n:02d}{x}", repository=repo), ScanState.SUCCESS, f"rep-{n}{x}",
                "manual", started_at=at(0), finished_at=at(0),
                scanner=ScannerInfo("Trivy", "", "0.58"), scanner_db_updated_at=at(0),
                report=reports[(n + shift) % len(reports)]), at(0))
    store.close()


def rules_for(store: Store) -> IgnoreRules:
    """A rule for one vulnerability in some repositories only (some of its findings ignored,
    others not), a package-wide rule in one repository, and a rule that expired long ago."""
    rows = store.open_findings()
    first, other = rows[0].key, next(r.key for r in rows if r.key.package != rows[0].key.package)
    today = at(0).date()
    return IgnoreRules(rules=(
        IgnoreConfig("accepted", today + timedelta(days=30), vulnerability=first.vulnerability,
                     repositories=("app-0[0-5]",)),
        IgnoreConfig("vendor says not used", today + timedelta(days=30), package=other.package,
                     repositories=(f"{other.project}/{other.repository}",)),
        IgnoreConfig("was accepted", date(2000, 1, 1), package=rows[-1].key.package),
    ))


def plain(plan: list[Remedy[Any]]) -> list[tuple[dict[str, Any], int]]:
    return [(action_json(r), sum(m.findings for m in r.members)) for r in plan]


def worst(plan: list[Remedy[Any]]) -> list[list[tuple[Any, ...]]]:
    """Each action's members: the worst finding shown for each vulnerability, with its
    images, and how many findings it stands for."""
    return [sorted((repr(m.rows[0].key), m.rows[0].digests, m.rows[0].installed_versions,
                    m.findings)
                   for m in r.members) for r in plan]


QUERIES = [FindingQuery(), FindingQuery(min_severity=Severity.HIGH),
           FindingQuery(repository="app-03"), FindingQuery(fixable=True),
           FindingQuery(include_ignored=True), FindingQuery(registry=REG, fixable=False),
           FindingQuery(registry=REG, project=PROJECT, min_severity=Severity.MEDIUM),
           FindingQuery(package="bash")]
NOTHING = [FindingQuery(registry="elsewhere"), FindingQuery(project="elsewhere")]


def check(url: str) -> None:
    store = open_store(url)
    try:
        rules = rules_for(store)
        now = at(0)
        for query in QUERIES:
            for given in (None, IgnoreRules(), rules):
                counted = store.finding_actions(query, rules=given, now=now)
                every = plan_findings(store.finding_batches(query, rules=given, now=now))
                assert plain(counted) == plain(every), (query, given)
                assert counted, query
        check_materialised(store, rules, now)
        # The rules do hide findings, so the comparison above saw the rules at work.
        assert sum(n for _, n in plain(store.finding_actions(QUERIES[0], rules=rules,
                                                             now=now))) < \
            sum(n for _, n in plain(store.finding_actions(QUERIES[0], rules=IgnoreRules(),
                                                          now=now)))
    finally:
        store.close()


def check_materialised(store: Store, rules: IgnoreRules, now: Any) -> None:
    """Materialised under ``rules``: every query, with those rules, none or no config, gives
    the counted plan, whole and its first actions; other rules find it stale."""
    for query in QUERIES:
        assert store.planned_actions(query, rules=rules, now=now) is None or \
            query.repository is not None  # never counted yet
    store.build_plan(rules, now)
    for query in QUERIES + NOTHING:
        for given in (None, IgnoreRules(), rules):
            counted = store.finding_actions(query, rules=given, now=now)
            found = store.planned_actions(query, rules=given, now=now)
            assert found is not None, (query, given)
            assert plain(found[0]) == plain(counted), (query, given)
            assert worst(found[0]) == worst(counted), (query, given)
            assert found[1] == len(counted)
            first = store.planned_actions(query, rules=given, now=now, limit=3)
            assert first is not None
            assert (plain(first[0]), first[1]) == (plain(counted[:3]), len(counted))
            later = store.planned_actions(query, rules=given, now=now, limit=3, offset=3)
            assert later is not None  # a later page: the next actions in the same order
            assert (plain(later[0]), later[1]) == (plain(counted[3:6]), len(counted))
    assert not store.finding_actions(NOTHING[0], rules=rules, now=now)
    # The shown actions' worst rows read finding by finding: the same carriers.
    with store.reading() as conn:
        wanted = {(h.repository_id, h.key.vulnerability, h.key.package) for h in
                  heads_where(conn, FindingQuery(include_ignored=True), None, now)}
        assert len({r for r, _, _ in wanted}) > 20  # more than carried() reads whole
        def occurrences(read: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
            return {key: sorted(rows, key=repr) for key, rows in read.items()}  # no set order
        assert occurrences(carried(conn, wanted, each=True)) == occurrences(
            carried(conn, wanted))
    other = IgnoreRules(rules=rules.rules[:1])
    assert store.planned_actions(FindingQuery(), rules=other, now=now) is None


def test_the_counted_plan_is_the_plan_of_every_finding(tmp_path: Path,
                                                       trivy_fixtures: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    seed(url, trivy_fixtures)
    check(url)



def test_the_counted_plan_is_the_same_on_postgresql(pg_url: str, trivy_fixtures: Path) -> None:
    seed(pg_url, trivy_fixtures)
    check(pg_url)
