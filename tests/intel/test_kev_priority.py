"""KEV and EPSS where a user decides what to fix first: the ``[sla]`` due date of a KEV finding
(``kev_due_date``), ``findings`` and ``--by action`` known exploited first with KEV/EPSS fields,
and a finding that arrives already in KEV (``known_exploited``/``in_kev``, alerted once).

As a user runs it: ``scanwatch intel refresh``, ``scanwatch run --once``, ``scanwatch findings``
and ``scanwatch report show`` in subprocesses, the simulator serving the real KEV catalog
2025.08.25 and an EPSS file of the real format over HTTP, a JSON webhook receiver, a real
SQLite file.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedkit import GIT, GIT_CVE, trivy_report
from hookkit import Hook
from runkit import sim_toml

from daemon import sla
from daemon.alerts.dedup import Told, told_already
from daemon.config_types import SlaConfig
from daemon.intel import kev
from daemon.model import ChangeEvent, ChangeKind, FindingKey, Reason, Severity
from daemon.sim import SimOptions, start_simulator

SCANWATCH = str(Path(sys.executable).with_name("scanwatch"))
CATALOG = "kev-2025.08.25.json"  # lists CVE-2025-48384 (added 2025-08-25, due 2025-09-15)
# Debian 12's expat before DSA-5770 (CVE-2024-45491, Critical, not in KEV).
EXPAT = ("CVE-2024-45491", "libexpat1", "2.5.0-1", "2.5.0-1+deb12u1", "CRITICAL")
LIBC = ("CVE-2025-4802", "libc6", "2.36-9+deb12u10", "2.36-9+deb12u11", "HIGH")
GIT_VULNS = [(GIT_CVE, *GIT, "HIGH"), ("CVE-2025-48385", *GIT, "HIGH"), EXPAT]
# Scores in FIRST's format (the real sample's first line and header, rows for these CVEs).
SCORES = {GIT_CVE: (0.31, 0.97), "CVE-2025-48385": (0.02, 0.8), LIBC[0]: (0.2, 0.95),
          EXPAT[0]: (0.09, 0.92)}


@dataclass
class World:
    sim: Any
    hook: Hook
    config: Path
    env: dict[str, str]
    db: Path
    tmp: Path
    kev_file: Path
    epss_file: Path
    _findings: list[dict[str, Any]] | None = None
    git_action: dict[str, Any] | None = None

    def cli(self, *argv: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCANWATCH, *argv, "--config", str(config or self.config)],
                              capture_output=True, text=True, env=self.env, timeout=180)

    def findings(self) -> list[dict[str, Any]]:
        """``scanwatch findings --format json`` after the first run (read once)."""
        if self._findings is None:
            self._findings = self.json("findings")
        return self._findings

    def json(self, *argv: str, config: Path | None = None) -> Any:
        proc = self.cli(*argv, "--format", "json", config=config)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def epss_file(shared_dir: Path, path: Path) -> Path:
    sample = (shared_dir / "fixtures" / "epss" / "epss_scores-sample.csv").read_text()
    # the sample whole (real rows of CVEs no image here has) and rows for these CVEs
    rows = "".join(f"{cve},{s},{p}\n" for cve, (s, p) in sorted(SCORES.items()))
    path.write_bytes(gzip.compress((sample + rows).encode()))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("kevprio")
    reports = tmp / "reports"
    reports.mkdir()
    trivy_report(reports / "bookworm-git.json", GIT_VULNS)
    trivy_report(reports / "bookworm-slim.json", [LIBC])
    kev_file = shared_dir / "fixtures" / "kev" / CATALOG
    epss = epss_file(shared_dir, tmp / "epss.csv.gz")
    hook = Hook()
    sim = start_simulator(SimOptions(
        seed=3, projects=1, repositories_per_project=4, artifacts_per_repository=1,
        scanned_share=1.0, index_share=0.0, chart_share=0.0, scan_seconds=0.05,
        scanner_concurrency=4, job_workers=8, trivy_reports=reports,
        feeds={"kev": str(kev_file), "epss": str(epss)}))
    project = sorted(sim.robots)[0]
    # A repository of its own whose first image has no git: its later git image is news.
    pushed = httpx.post(f"{sim.url}/_sim/push", json={
        "project": project, "repository": "kevtest", "tag": "1.0",
        "report": "bookworm-slim.json"})
    assert pushed.status_code == 200, pushed.text
    config = tmp / "config.toml"
    config.write_text(f"""\
{sim_toml(tmp / 'history.db', sim.url, drain=True)}
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["sim"]

[[feed]]
name = "kev"
url = "{sim.url}/feeds/kev.json"
max_retries = 0

[[feed]]
name = "epss"
url = "{sim.url}/feeds/epss.csv.gz"
max_retries = 0

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:{hook.port}/hook"]

[[route]]
receivers = ["hook"]
min_severity = "Low"
events = ["new", "known_exploited", "sla_overdue"]

[sla]
Critical = "3650d"
High = "3650d"
kev_due_date = true
""")
    env = {**os.environ, "SIM_PASSWORD": sim.admin[1]}
    env.pop("SCANWATCH_CONFIG", None)
    w = World(sim, hook, config, env, tmp / "history.db", tmp, kev_file, epss)
    proc = w.cli("intel", "refresh")  # the first copies: a baseline, no events
    assert proc.returncode == 0, proc.stderr
    proc = w.cli("run", "--once")
    assert proc.returncode == 0, proc.stderr
    yield w
    sim.stop()
    hook.shutdown()


def open_repos(db: Path, cve: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r for (r,) in conn.execute(
            "SELECT r.project || '/' || r.name FROM finding f JOIN repository r "
            "ON r.id = f.repository_id WHERE f.vulnerability = ? AND f.resolved_at IS NULL",
            (cve,))}


# -- [sla] kev_due_date ------------------------------------------------------------------------

@functools.cache
def git_entry(shared_dir: Path) -> kev.KevEntry:
    catalog = kev.parse((shared_dir / "fixtures" / "kev" / CATALOG).read_bytes(), CATALOG)
    return catalog.entries[GIT_CVE]


@pytest.mark.parametrize(("policy", "severity", "seen", "expected", "by_kev"), [
    (SlaConfig({Severity.HIGH: timedelta(days=30)}, kev_due_date=True), Severity.HIGH,
     datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 16, tzinfo=UTC), True),
    (SlaConfig({Severity.HIGH: timedelta(days=7)}, kev_due_date=True), Severity.HIGH,
     datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 8, tzinfo=UTC), False),
    (SlaConfig({Severity.HIGH: timedelta(days=30)}), Severity.HIGH,
     datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC), False),
    (SlaConfig({}, kev_due_date=True), Severity.LOW,
     datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 16, tzinfo=UTC), True),
    (SlaConfig({}, kev_due_date=True), Severity.LOW,
     datetime(2025, 9, 1), datetime(2025, 9, 16), True),
], ids=["kev-earlier", "severity-earlier", "kev-not-asked", "untracked-severity", "naive"])
def test_a_kev_finding_is_due_by_the_catalogs_due_date_when_it_comes_first(
        shared_dir: Path, policy: SlaConfig, severity: Severity, seen: datetime,
        expected: datetime, by_kev: bool) -> None:
    due = git_entry(shared_dir).due_date
    assert due == date(2025, 9, 15)
    assert sla.deadline_for(severity, seen, policy, due) == expected
    now = expected + timedelta(hours=1)
    state = sla.evaluate([("f", severity, seen)], policy, now, {"f": due})
    [item] = state.overdue
    assert (item.deadline, item.kev_due) == (expected, due if by_kev else None)
    # Without the KEV date the finding is overdue only where its severity made it so.
    assert bool(sla.evaluate([("f", severity, seen)], policy, now).overdue) is not by_kev


def test_kev_findings_are_overdue_by_the_catalog_in_findings_and_alerts(world: World) -> None:
    git_repos = open_repos(world.db, GIT_CVE)
    assert git_repos, "the simulator gave no image the git report: change the seed"
    rows = world.findings()
    kev_rows = [r for r in rows if r["vulnerability"] == GIT_CVE]
    assert {f"{r['project']}/{r['repository']}" for r in kev_rows} == git_repos
    for r in kev_rows:  # due by the end of 2025-09-15, CISA's date: long past
        assert (r["kev"], r["kev_due_date"], r["deadline"]) == (
            True, "2025-09-15", "2025-09-16T00:00:00+00:00")
        assert r["sla"].startswith("overdue ")
    for r in rows:
        if r["vulnerability"] != GIT_CVE:  # the 3650d of their severity
            opened = datetime.fromisoformat(r["opened_at"])
            assert r["deadline"] == (opened + timedelta(days=3650)).isoformat()
    overdue = world.json("findings", "--overdue")
    assert sorted((r["repository"], r["vulnerability"]) for r in overdue) == sorted(
        (r["repository"], r["vulnerability"]) for r in kev_rows)
    # The first run's message lists them overdue by KEV's date, and nothing else.
    said = [o for doc in world.hook.documents(0) for o in doc["overdue"]]
    assert {(o["image"]["project"] + "/" + o["image"]["repository"], o["vulnerability"],
             o["kev_due_date"]) for o in said} == {(r, GIT_CVE, "2025-09-15") for r in git_repos}
    # Without kev_due_date the same findings are not overdue.
    plain = world.tmp / "plain.toml"
    plain.write_text(world.config.read_text().replace("kev_due_date = true",
                                                      "kev_due_date = false"))
    assert world.json("findings", "--overdue", config=plain) == []


# -- known exploited first ----------------------------------------------------------------------

def test_findings_list_known_exploited_first(world: World) -> None:
    rows = world.findings()
    kev_first = [r["vulnerability"] == GIT_CVE for r in rows]
    assert kev_first == sorted(kev_first, reverse=True) and kev_first[0]
    # After them the listing's own order: the Critical expat CVE leads the rest.
    rest = [r for r in rows if r["vulnerability"] != GIT_CVE]
    assert rest[0]["vulnerability"] == EXPAT[0]


def test_findings_by_action_carries_kev_and_epss_and_ranks_by_them(world: World) -> None:
    actions = world.json("findings", "--by", "action")
    # KEV first, then EPSS (libc6 0.2 beats the Critical expat's 0.09), then severity.
    assert [a["package"] for a in actions] == ["git", "libc6", "libexpat1"]
    git = actions[0]
    assert (git["installed_version"], git["fix_version"]) == GIT[1:]
    assert (git["kev"], git["kev_date_added"], git["kev_due_date"], git["epss"],
            git["epss_percentile"]) == (True, "2025-08-25", "2025-09-15", 0.31, 0.97)
    by_id = {v["id"]: v for v in git["vulnerabilities"]}
    assert by_id[GIT_CVE]["kev"]["name"] == "Git Link Following Vulnerability"
    assert by_id[GIT_CVE]["kev"]["due_date"] == "2025-09-15"
    assert (by_id["CVE-2025-48385"]["kev"], by_id["CVE-2025-48385"]["epss"]) == (None, 0.02)
    assert (actions[2]["kev"], actions[2]["epss"]) == (False, 0.09)
    world.git_action = git


def test_listings_read_the_epss_scores_they_meet(world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The feed's other rows (the real sample's, of CVEs no image here has) stay in the
    # database: a listing reads the score of each CVE it meets, and past a few hundred the
    # scores of every open finding's CVE at once, never the feed's 300,000 rows.
    from sqlalchemy import create_engine

    from daemon.store import intel as store_intel

    engine = create_engine(f"sqlite:///{world.db}")
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM intel_epss").scalar_one()
    sample_cve = "CVE-1999-0016"  # in the real sample, on no image here
    scores = store_intel.tables(engine).epss
    assert stored > len(SCORES) and scores and dict(scores) == {}  # nothing read yet
    assert scores.get(GIT_CVE) == SCORES[GIT_CVE]
    assert scores.get(sample_cve) == (0.95739, 0.99871)  # asked for: read
    assert dict(scores) == {GIT_CVE: SCORES[GIT_CVE], sample_cve: (0.95739, 0.99871)}
    monkeypatch.setattr(store_intel.EpssScores, "BULK", 0)
    whole = store_intel.tables(engine).epss
    open_cves = {r["vulnerability"] for r in world.findings()}
    assert whole.get(LIBC[0]) == SCORES[LIBC[0]]
    assert dict(whole) == {cve: SCORES[cve] for cve in open_cves & set(SCORES)}
    assert whole.get(sample_cve) is None  # not an open finding's: never read
    engine.dispose()
    assert {r["vulnerability"]: r["epss"] for r in world.findings()} == {
        cve: SCORES[cve][0] if cve in SCORES else None for cve in open_cves}


def test_report_show_by_action_ranks_by_kev_and_epss_files(world: World) -> None:
    # report show, offline, with the same feed files: the same order and fields.
    report = world.tmp / "reports" / "bookworm-git.json"
    proc = subprocess.run([SCANWATCH, "report", "show", str(report), "--by", "action",
                           "--kev", str(world.kev_file), "--epss", str(world.epss_file),
                           "--format", "json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert [a["package"] for a in shown] == ["git", "libexpat1"]
    assert {k: shown[0][k] for k in ("kev", "kev_due_date", "epss")} == {
        "kev": True, "kev_due_date": "2025-09-15", "epss": 0.31}
    by_id = {v["id"]: v for v in shown[0]["vulnerabilities"]}
    assert by_id[GIT_CVE]["kev"]["date_added"] == "2025-08-25"
    if world.git_action is not None:  # as findings --by action has it
        assert shown[0]["vulnerabilities"] == world.git_action["vulnerabilities"]
    # Without them: the severity order, nothing exploited.
    proc = subprocess.run([SCANWATCH, "report", "show", str(report), "--by", "action",
                           "--format", "json"], capture_output=True, text=True, timeout=60)
    plain = json.loads(proc.stdout)
    assert [(a["package"], a["kev"]) for a in plain] == [("libexpat1", False), ("git", False)]
    # The table says it too.
    proc = subprocess.run([SCANWATCH, "report", "show", str(report), "--by", "action",
                           "--kev", str(world.kev_file)], capture_output=True, text=True,
                          timeout=60)
    assert "EXPLOITED" in proc.stdout and "KEV (due 2025-09-15)" in proc.stdout


def test_a_bad_kev_file_for_report_show_is_one_line(world: World) -> None:
    report = world.tmp / "reports" / "bookworm-git.json"
    proc = subprocess.run([SCANWATCH, "report", "show", str(report), "--by", "action",
                           "--kev", str(report)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert str(report) in line and "not a KEV catalog" in line


# -- arriving already known exploited ----------------------------------------------------------

def test_a_finding_that_arrives_already_in_kev_is_alerted_known_exploited_once(
        world: World) -> None:
    project = sorted(world.sim.robots)[0]
    assert f"{project}/kevtest" not in open_repos(world.db, GIT_CVE)
    with sqlite3.connect(world.db) as conn:  # the first sights raised none
        assert conn.execute("SELECT count(*) FROM finding_event WHERE reason = 'in_kev'"
                            ).fetchone() == (0,)
    sent = len(world.hook.bodies)
    pushed = httpx.post(f"{world.sim.url}/_sim/push", json={
        "project": project, "repository": "kevtest", "tag": "2.0",
        "report": "bookworm-git.json"})
    assert pushed.status_code == 200, pushed.text
    proc = world.cli("run", "--once")
    assert proc.returncode == 0, proc.stderr
    [doc] = world.hook.documents(sent)
    mine = [(a, v) for a in doc["fix_now"] for v in a["vulnerabilities"]
            if any(i["repository"] == "kevtest" for i in a["images"])]
    # Once: the git CVE is one line, as known exploited on arrival; its neighbour is new.
    assert sorted((a["package"], v["id"], v["change"], v["reason"]) for a, v in mine) == [
        ("git", GIT_CVE, "known_exploited", "in_kev"),
        ("git", "CVE-2025-48385", "new", "new_image"),
        ("libexpat1", EXPAT[0], "new", "new_image")]
    assert doc["fix_now"][0]["kev"] is True
    with sqlite3.connect(world.db) as conn:
        kinds = conn.execute(
            "SELECT e.kind, e.reason, e.previous_version FROM finding_event e JOIN finding f "
            "ON f.id = e.finding_id JOIN repository r ON r.id = f.repository_id "
            "WHERE r.name LIKE '%kevtest' AND f.vulnerability = ? ORDER BY e.id",
            (GIT_CVE,)).fetchall()
    assert kinds == [("new", "new_image", ""), ("known_exploited", "in_kev", "KEV 2025.08.25")]
    # Nothing more to say on the next run.
    proc = world.cli("run", "--once")
    assert proc.returncode == 0, proc.stderr
    assert len(world.hook.bodies) == sent + 1


def event(reason: Reason) -> ChangeEvent:
    return ChangeEvent(kind=ChangeKind.KNOWN_EXPLOITED, reason=reason,
                       finding=FindingKey("sim", "p", "r", GIT_CVE, "git"),
                       severity=Severity.HIGH, at=datetime(2025, 9, 1, tzinfo=UTC))


@pytest.mark.parametrize(("told", "reason", "again"), [
    ("listed", Reason.KEV_ADDED, True),  # listed on arrival: the feed listing it is no news
    ("listed", Reason.KEV_REMOVED, False),  # a removal after a listing is shown, once
    ("removed", Reason.KEV_REMOVED, True),
    ("removed", Reason.KEV_ADDED, False),  # listed again after a removal
], ids=["listed-listed", "listed-removed", "removed-removed", "removed-listed"])
def test_known_exploited_is_told_once_per_listing_state(told: str, reason: Reason,
                                                        again: bool) -> None:
    entries = [Told("known_exploited", told, datetime(2025, 8, 25, tzinfo=UTC))]
    assert told_already(entries, event(reason)) is again
