"""The CVSS v3 score of each CVE, from real reports to every place a reader sees it: the
store (with the report content), change events, Slack, email, the JSON alert document,
``findings`` and ``report show``.

Harbor's native report gives the score as ``preferred_cvss.score_v3`` (derived from
``vendor_attributes.CVSS``: nvd first) and leaves ``vector_v3`` empty for Trivy; the vector is
the same vendor's ``V3Vector`` (API-NOTES §10). The expected figures are read from the real
Trivy fixtures, never written here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alertkit import run_sim_schedule, sim_config

from daemon.alerts.group import context_for
from daemon.alerts.outbox import build_and_queue
from daemon.config_types import Config, ReceiverConfig, RouteConfig, ScheduleConfig, Secret
from daemon.harbor.reports import load_report_file
from daemon.model import ScannerInfo, ScanResult, ScanState, Severity
from daemon.store import outbox as store_outbox
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, ref


def nvd_scores(trivy_fixtures: Path) -> dict[str, tuple[float, str]]:
    """CVE → (nvd V3Score, V3Vector) as the real fixtures give them."""
    out = {}
    for path in trivy_fixtures.glob("*.json.golden"):
        for result in json.loads(path.read_text()).get("Results", []):
            for v in result.get("Vulnerabilities") or []:
                nvd = (v.get("CVSS") or {}).get("nvd") or {}
                if "V3Score" in nvd:
                    out[v["VulnerabilityID"]] = (float(nvd["V3Score"]), nvd["V3Vector"])
    return out


def scanned(name: str, trivy_fixtures: Path, when: datetime) -> ScanResult:
    report = load_report_file(trivy_fixtures / f"{name}.json.golden")
    return ScanResult(ref("sha256:a"), ScanState.SUCCESS, f"rep-{name}", "manual",
                      started_at=when, finished_at=when, scanner=ScannerInfo("Trivy", "", "0.58"),
                      scanner_db_updated_at=when, report=report)


def config(*urls: str) -> Config:
    return Config(receivers=tuple(ReceiverConfig(f"r{n}", (Secret(u, "literal"),))
                                  for n, u in enumerate(urls)),
                  routes=(RouteConfig(tuple(f"r{n}" for n in range(len(urls))), name="all",
                                      min_severity=Severity.NONE),))


def test_each_channel_shows_the_reports_cvss_score_beside_the_severity(
        trivy_fixtures: Path, tmp_path: Path) -> None:
    expected = nvd_scores(trivy_fixtures)
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scans([scanned("alpine-310", trivy_fixtures, at(0))], at(0))  # first sight
        # The same digest rescanned: the scanner now reports debian's two CVEs (published).
        events = store.record_scans([scanned("debian-buster", trivy_fixtures, at(1))], at(1))
        new = {e.finding.vulnerability: e for e in events if e.kind.value == "new"}
        assert set(new) == {"CVE-2019-18224", "CVE-2019-18276"}
        for cve, e in new.items():
            assert (e.cvss_v3, e.cvss_vector) == expected[cve]
        cfg = config("json://127.0.0.1:9/hook", "slack://T000/B000/XXXX/#sec",
                     "mailto://u:p@127.0.0.1:9?to=a@example.com")
        assert build_and_queue(store, cfg, run_context=context_for(cfg, name="nightly"),
                               now=at(1) + timedelta(minutes=5))
        rows = {r.payload["format"]: r.payload for r in store_outbox.listing(store)}
        doc = json.loads(rows["json"]["body"])
        vulns = {v["id"]: v for s in ("fix_now", "no_fix") for a in doc[s]
                 for v in a["vulnerabilities"]}
        for cve in new:
            score, vector = expected[cve]
            assert (vulns[cve]["cvss_v3"], vulns[cve]["cvss_vector"]) == (score, vector)
            words = f"{new[cve].severity.label}, CVSS {score:.1f}"
            assert words in rows["slack"]["body"], cve
            assert f"CVSS {score:.1f}" in rows["email"]["body"]
            assert f"({words}" in rows["email"]["text"]  # the plain-text part too
    finally:
        store.close()


async def test_findings_and_report_show_carry_the_score_harbor_serves(
        make_sim: Any, trivy_fixtures: Path, tmp_path: Path) -> None:
    expected = nvd_scores(trivy_fixtures)
    sim = make_sim(projects=1, repositories_per_project=2, artifacts_per_repository=2,
                   scanned_share=1.0, scan_seconds=0.05, index_share=0.0, chart_share=0.0,
                   cnab_share=0.0, trivy_reports=str(trivy_fixtures))
    cfg = sim_config(sim, schedules=(ScheduleConfig(name="n", cron="0 2 * * *",
                                                    registries=("sim",)),))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = open_store(url)
    try:
        await run_sim_schedule(cfg, store)
    finally:
        store.close()
    out = subprocess.run([sys.executable, "-m", "daemon", "findings", "--database", url,
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    scored = [r for r in records if r["vulnerability"] in expected]
    assert scored, "the simulator served none of the fixtures' CVEs"
    for r in scored:
        assert (r["cvss_v3"], r["cvss_vector"]) == expected[r["vulnerability"]], r
    shown = subprocess.run([sys.executable, "-m", "daemon", "report", "show",
                            str(trivy_fixtures / "centos-7.json.golden"), "--format", "json"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    items = body["vulnerabilities"] if isinstance(body, dict) else body
    assert items
    for item in items:
        assert (item["cvss_v3"], item["cvss_vector"]) == expected[item["id"]]


@pytest.mark.parametrize(
    ("cvss", "preferred", "want"),
    [
        ({"nvd": {"V3Score": 9.8, "V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
         {"score_v3": 9.8, "vector_v3": ""},
         (9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")),
        ({"nvd": {"V3Score": 7.5, "V3Vector": "CVSS:3.1/AV:N/AC:H"}},
         {"score_v3": 8.1, "vector_v3": ""}, (8.1, "")),
        ({"redhat": {"V3Score": 5.6, "V3Vector": "CVSS:3.0/AV:N/AC:H"}}, None,
         (5.6, "CVSS:3.0/AV:N/AC:H")),
        ({"nvd": {"V3Score": 5.0, "V3Vector": "AV:N <script>"}}, None, (5.0, "")),
        ({"nvd": {"V3Score": 5.0, "V3Vector": 7}}, None, (5.0, "")),
        ({"nvd": {"V3Score": 5.0}}, {"score_v3": 5.0, "vector_v3": "CVSS:3.1/AV:L"},
         (5.0, "CVSS:3.1/AV:L")),
    ],
    ids=["nvd-vector-of-harbors-score", "rescored-by-harbor-vector-stale-so-none",
         "first-vendor-without-nvd", "not-a-vector", "vector-not-a-string",
         "vector-harbor-gave"])
def test_the_vector_is_the_one_of_the_score_in_force(
        cvss: dict[str, Any], preferred: dict[str, Any] | None,
        want: tuple[float, str]) -> None:
    from daemon.harbor.reports import parse_harbor_report

    item = {"id": "CVE-2019-18224", "package": "libidn2-0", "version": "2.0.5-1",
            "fix_version": "", "severity": "Critical", "preferred_cvss": preferred,
            "vendor_attributes": {"CVSS": cvss}}
    [occ] = parse_harbor_report({"vulnerabilities": [item]}).occurrences
    assert (occ.cvss_v3, occ.cvss_vector) == want
