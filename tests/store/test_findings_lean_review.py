"""Review of the lean listing (``store/listing.py``, ``commands/findings_lean.py``) and of the
plan counted from the carrier summaries: cases where they must write what the general path
writes, on real Trivy reports with one thing changed (a hostile installed version), on SQLite
and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.remedy import plan_findings
from daemon.store.db import open_store
from daemon.store.findings import FindingQuery
from tests.store.store_helpers import REG, artifact, at
from tests.store.test_actions_counted import plain
from tests.store.test_findings_lean import listed, scan

HOSTILE = '1.1.1c-r0",['  # ends with the bytes that end a version in a summary's JSON


def config_for(url: str, tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[daemon]\ndatabase = "{url}"\n\n[[registry]]\nname = "{REG}"\n'
        'url = "https://harbor.example"\nusername = "u"\npassword = "p"\n\n'
        '[sla]\nCritical = "7d"\nHigh = "30d"\n')
    return config


def hostile_report(trivy: Path, tmp_path: Path) -> Path:
    """alpine-310's real report, one vulnerability's installed version made hostile."""
    report = json.loads((trivy / "alpine-310.json.golden").read_text())
    found = report["Results"][0]["Vulnerabilities"]
    found[0]["InstalledVersion"] = HOSTILE
    found[1]["InstalledVersion"] = "1.1.1c\\r0"  # a backslash: escaped in JSON
    found[2]["PkgName"] += "\x1b[2J"  # a terminal escape (read as U+FFFD)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(report))
    return path


def test_an_installed_version_holding_quote_comma_bracket_lists_as_before(
        url: str, trivy_fixtures: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(url)
    store.record_inventory(REG, [artifact("sha256:a1", "1.0", 'x",[', repository="edge")],
                           at(0))
    store.close()
    scan(url, "sha256:a1", "edge", hostile_report(trivy_fixtures, tmp_path), 0)
    store = open_store(url)
    store.refresh_carriers()
    store.close()
    config = config_for(url, tmp_path)
    for args in (("--format", "json"), ("--format", "jsonl"), ("--all",),
                 ("--limit", "5001")):
        lean = listed(config, monkeypatch, *args)
        assert lean == listed(config, monkeypatch, *args, lean=False), args
    assert HOSTILE.replace('"', '\\"').encode() in listed(config, monkeypatch, "--format", "json")
    store = open_store(url)
    try:
        counted = store.finding_actions(FindingQuery(), rules=None, now=at(12))
        every = plan_findings(store.finding_batches(FindingQuery(), rules=None, now=at(12)))
        assert plain(counted) == plain(every)
        assert any(HOSTILE in str(p) for p in plain(counted))
    finally:
        store.close()


def test_a_summary_json_could_not_hold_counts_its_finding_once(
        url: str, trivy_fixtures: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A finding whose summary is ``READ_LIVE`` (``_stored`` could not encode it) is read from
    its carriers; its repository's other findings, counted from their summaries, are not
    counted a second time."""
    from daemon.store import carrier_summary as cs
    from tests.store.test_actions_counted import seed

    seed(url, trivy_fixtures)
    stored = cs._stored
    made: list[int] = []

    def unencodable_once(finding: int, key: tuple[int, str, str], summary: Any) -> Any:
        row = stored(finding, key, summary)
        if not made:  # as _stored writes one whose JSON raised
            made.append(finding)
            row.update(carriers=cs.READ_LIVE, tags="[]")
        return row

    monkeypatch.setattr(cs, "_stored", unencodable_once)
    store = open_store(url)
    try:
        store.refresh_carriers()
        with store.engine.connect() as conn:
            assert made and list(cs.marked(conn)) == []  # nothing marked: summaries in use
        counted = store.finding_actions(FindingQuery(), rules=None, now=at(12))
        every = plan_findings(store.finding_batches(FindingQuery(), rules=None, now=at(12)))
        assert plain(counted) == plain(every)
    finally:
        store.close()


def test_vex_statements_allowlists_and_expiring_rules_list_as_before(
        url: str, trivy_fixtures: Path, shared_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``test_findings_lean``'s registry with every kind of rule: a VEX ``not_affected``
    statement, an ``under_investigation`` one and an ``affected`` one with a non-ASCII action
    (notes), a Harbor allowlist (one of the project's, one expired), a rule added from the
    command line, a rule expiring today and one expired; summarised and not."""
    from datetime import timedelta

    from daemon.config_types import IgnoreConfig
    from daemon.model import CveAllowlist
    from tests.intel.test_vex import openvex
    from tests.store.store_helpers import PROJECT
    from tests.store.test_findings_lean import prepare

    config = prepare(url, trivy_fixtures, shared_dir, tmp_path)
    store = open_store(url)
    cves = sorted({r.key.vulnerability for r in store.open_findings()})
    packages = sorted({r.key.package for r in store.open_findings()})
    store.save_allowlists(REG, [CveAllowlist(REG, frozenset(cves[1:3]), None, PROJECT),
                                CveAllowlist(REG, frozenset(cves[3:4]), at(5))], at(0))
    store.add_ignore(IgnoreConfig("from the CLI", at(12).date(), package=packages[1]),
                     "ops", at(0))
    store.close()
    doc = tmp_path / "team.openvex.json"
    doc.write_text(json.dumps(openvex([
        {"vulnerability": cves[4], "products": [f"{PROJECT}/app-1*"], "status": "not_affected",
         "justification": "vulnerable_code_not_present"},
        {"vulnerability": cves[5], "products": [f"{PROJECT}/*"],
         "status": "under_investigation"},
        {"vulnerability": cves[6], "products": [f"{PROJECT}/*"], "status": "affected",
         "action_statement": "Mise à jour de l'image de base"}])))
    today = at(12).date()
    text = config.read_text().replace('password = "p"\n',
                                      'password = "p"\nuse_harbor_allowlist = true\n')
    config.write_text(
        text + f'\n[[ignore]]\npackage = "{packages[2]}"\nreason = "until today"\n'
        f'expires = {today.isoformat()}\n\n[[ignore]]\npackage = "{packages[3]}"\n'
        f'reason = "long gone"\nexpires = {(today - timedelta(days=1)).isoformat()}\n\n'
        f'[[vex]]\nname = "team"\npath = "{doc}"\n')
    for summarised in (False, True):
        if summarised:
            store = open_store(url)
            store.refresh_carriers()
            store.close()
        for args in (("--format", "json"), ("--format", "jsonl", "--include-ignored"),
                     ("--all", "--include-ignored"), ("--format", "json", "--fixable")):
            lean = listed(config, monkeypatch, *args)
            assert lean == listed(config, monkeypatch, *args, lean=False), (summarised, args)
    every = listed(config, monkeypatch, "--format", "json", "--include-ignored")
    for shown in (b"VEX under_investigation", b"VEX not_affected", b"Harbor CVE allowlist",
                  b"from the CLI", b"until today", b"Mise \\u00e0 jour"):
        assert shown in every, shown
    assert b"long gone" not in every
