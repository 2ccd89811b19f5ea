"""A whole `scanwatch findings` listing (``--format json``, ``jsonl``, the table) read lean
(``store/listing.py``) and written from its parts (``commands/findings_lean.py``) is byte for
byte what the general path writes (every finding a ``FindingRow``, a record, its encoder): on
real Trivy reports recorded into 25 repositories (a package at two versions in one), with the
KEV copy in force listing one of their CVEs, EPSS scores, [sla] deadlines, [[ignore]] rules
(one with a non-ASCII reason, which the standard encoder escapes) and every filter the lean
path takes; before any summary is built, after, and with a rescan not yet summarised (its
repository read from its carriers); on SQLite and on PostgreSQL. ``findings --by action``,
whose counts now come from the same summaries, is the plan of every finding row read from the
carriers, marks included."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import time_machine

from daemon import cli
from daemon.commands import findings as findings_command
from daemon.harbor.reports import load_report_file
from daemon.intel import epss, kev
from daemon.model import ScannerInfo, ScanResult, ScanState
from daemon.remedy import plan_findings
from daemon.store import actions, findings, listing
from daemon.store import intel as store_intel
from daemon.store.db import open_store
from daemon.store.findings import FindingQuery
from tests.intel.feedkit import GIT_CVE, git_reports
from tests.store.store_helpers import REG, artifact, at, ref
from tests.store.test_actions_counted import FIXTURES, plain, seed

CATALOG = "kev-2025.08.25.json"  # lists CVE-2025-48384 (Git)


def scan(url: str, digest: str, repository: str, report: Path, days: float) -> None:
    store = open_store(url)
    try:
        store.record_scan(ScanResult(
            ref(digest, repository=repository), ScanState.SUCCESS, f"re-{digest}-{days}",
            "manual", started_at=at(days), finished_at=at(days),
            scanner=ScannerInfo("Trivy", "", "0.58"), scanner_db_updated_at=at(days),
            report=load_report_file(report)), at(days))
    finally:
        store.close()


def prepare(url: str, trivy: Path, shared: Path, tmp_path: Path) -> Path:
    """``test_actions_counted``'s 24 repositories, a 25th whose image carries git with the
    KEV CVE, the real KEV catalog and EPSS scores (FIRST's shape) for some of their CVEs; the
    configuration of the listing."""
    seed(url, trivy)
    store = open_store(url)
    store.record_inventory(REG, [
        *(artifact(f"sha256:{n:02d}{x}", x, repository=f"app-{n:02d}")
          for n in range(24) for x in ("a", "b")),
        artifact("sha256:git", "1.0", "stable", repository="tools")], at(0))
    store.close()
    scan(url, "sha256:git", "tools", git_reports(tmp_path / "reports") / "bookworm-git.json", 0)
    store = open_store(url)
    cves = sorted({r.key.vulnerability for r in store.open_findings()})
    sample = (shared / "fixtures" / "epss" / "epss_scores-sample.csv").read_text()
    head = "".join(sample.splitlines(keepends=True)[:2])  # FIRST's comment line and header
    rows = "".join(f"{cve},0.{n + 1:04d},0.{90 + n % 9}\n" for n, cve in enumerate(cves[::2]))
    with store.transaction() as conn:
        store_intel.replace_kev(conn, kev.parse(
            (shared / "fixtures" / "kev" / CATALOG).read_bytes(), CATALOG))
        store_intel.replace_epss(conn, epss.parse(gzip.compress((head + rows).encode()),
                                                  "epss.csv.gz"))
    store.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[daemon]\ndatabase = "{url}"\n\n[[registry]]\nname = "{REG}"\n'
        'url = "https://harbor.example"\nusername = "u"\npassword = "p"\n\n'
        '[sla]\nCritical = "7d"\nHigh = "30d"\nkev_due_date = true\n\n'
        f'[[ignore]]\nvulnerability = "{cves[0]}"\nrepositories = ["app-0[0-5]"]\n'
        'reason = "geprüft: nicht erreichbar"\nexpires = 2099-01-31\n\n'
        f'[[ignore]]\npackage = "bash"\nreason = "not shipped"\nexpires = 2099-01-31\n')
    return config


def listed(config: Path, monkeypatch: pytest.MonkeyPatch, *args: str, lean: bool = True
           ) -> bytes:
    """What ``scanwatch findings ARGS`` writes on stdout; ``lean=False``: the general path."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", out)
        if not lean:
            m.setattr(findings_command, "LEAN_FORMATS", ())
        with time_machine.travel(at(12), tick=False):
            assert cli.main(["--config", str(config), "findings", *args]) == 0
    out.flush()
    data = out.buffer.getvalue()  # type: ignore[attr-defined]
    assert isinstance(data, bytes)
    return data


ARGS = [("--format", "json"), ("--format", "jsonl"), ("--format", "json", "--include-ignored"),
        ("--format", "json", "--fixable", "--severity", "High"),
        ("--format", "json", "--repository", "app-03"), ("--format", "jsonl", "--limit", "5001"),
        ("--all",), ("--all", "--include-ignored", "--wide"), ("--fixable", "--severity", "High"),
        ("--format", "json", "--registry", "elsewhere")]


def same_both_ways(config: Path, monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, ...], bytes]:
    out = {}
    for args in ARGS:
        lean = listed(config, monkeypatch, *args)
        assert lean == listed(config, monkeypatch, *args, lean=False), args
        out[args] = lean
    return out


def refused(*_: Any, **__: Any) -> Any:
    raise AssertionError("read from the carriers")


def test_the_lean_listing_is_the_general_one_byte_for_byte(
        url: str, trivy_fixtures: Path, shared_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = prepare(url, trivy_fixtures, shared_dir, tmp_path)
    before = same_both_ways(config, monkeypatch)  # nothing summarised yet: read live
    store = open_store(url)
    assert store.refresh_carriers() == 25
    store.close()
    after = same_both_ways(config, monkeypatch)
    assert after == before
    bare = tmp_path / "bare.toml"  # no [[ignore]]: the rows as the driver gives them
    bare.write_text(config.read_text().split("[[ignore]]")[0])
    with monkeypatch.context() as m:  # summarised: read and written lean alone
        m.setattr(findings, "with_carriers", refused)
        m.setattr(listing, "finding_row", refused)
        for args in (("--format", "json"), ("--format", "jsonl"), ("--all",)):
            assert listed(config, monkeypatch, *args) == after[args]
            assert listed(bare, monkeypatch, *args) != after[args]  # more: none ignored
    for args in (("--format", "json"), ("--all",)):
        assert listed(bare, monkeypatch, *args) == listed(bare, monkeypatch, *args, lean=False)
    records = [orjson.loads(line) for line in after[("--format", "jsonl")].splitlines()]
    assert len(records) > 50 and records[0]["vulnerability"] == GIT_CVE  # KEV first
    assert records[0]["kev"] and records[0]["sla"] and records[0]["deadline"]
    ignored = orjson.loads(after[("--format", "json", "--include-ignored")])
    assert any(r["epss"] for r in records) and any(len(r["installed_versions"]) > 1
                                                   for r in ignored)
    assert any(r["ignore_reason"] and "geprüft" in r["ignore_reason"] for r in ignored)
    assert b"gepr\\u00fcft" in after[("--format", "json", "--include-ignored")]  # escaped
    assert after[("--format", "json", "--registry", "elsewhere")] == b"[]\n"

    # A rescan not yet summarised: its repository is read from its carriers.
    scan(url, "sha256:00a", "app-00", trivy_fixtures / FIXTURES[2], 2)
    truth = same_both_ways(config, monkeypatch)
    assert truth != after
    # Read without the mark, the summary kept from before the rescan is wrong: the mark is
    # what keeps the lean listing right.
    with monkeypatch.context() as m:
        m.setattr(listing, "usable", lambda row: bool(row[listing.S_CARRIERS]))
        assert listed(config, monkeypatch, "--format", "json") != truth[("--format", "json")]


def test_the_plan_counted_from_the_summaries_is_the_plan_of_every_finding(
        url: str, trivy_fixtures: Path, shared_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(url, trivy_fixtures, shared_dir, tmp_path)
    now = at(12)

    def check(store: Any) -> list[Any]:
        counted = store.finding_actions(FindingQuery(), rules=None, now=now)
        every = plan_findings(store.finding_batches(FindingQuery(), rules=None, now=now))
        assert plain(counted) == plain(every)
        return plain(counted)

    store = open_store(url)
    try:
        live = check(store)  # every repository marked: read from the carriers
        store.refresh_carriers()
        with monkeypatch.context() as m:  # summarised: counted from the summaries alone
            m.setattr(actions, "_carried", refused)
            assert plain(store.finding_actions(FindingQuery(), rules=None, now=now)) == live
        assert check(store) == live
        store.close()
        scan(url, "sha256:00a", "app-00", trivy_fixtures / FIXTURES[2], 2)  # marked
        store = open_store(url)
        assert check(store) != live
    finally:
        store.close()
