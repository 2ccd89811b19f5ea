"""`scanwatch findings` on a store larger than its batches: order, limits, streaming formats,
the terminal page, the summaries and the indexes they read through (real SQLite files, real
subprocesses, real Trivy reports)."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from daemon.harbor.reports import load_report_file
from daemon.model import ScannerInfo, ScanResult, ScanState, Severity
from daemon.store import findings
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, ref, success

REPOSITORIES = 45  # more than two of findings.ordered's repository batches
SEVERITIES = ("Critical", "High", "Medium", "Low")


def scanwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True,
                          text=True, timeout=120)


def seed_many(url: str) -> None:
    """45 repositories, two images each, findings of every severity, fixed and not; the same
    advisory in several repositories, a package at two versions in one."""
    store = open_store(url)
    store.record_inventory(REG, [artifact(f"sha256:{n:02d}{x}", tag, repository=f"svc-{n:02d}")
                                 for n in range(REPOSITORIES)
                                 for x, tag in (("a", "1.0"), ("b", "latest"))], at(0))
    for n in range(REPOSITORIES):
        repo = f"svc-{n:02d}"
        specs = [f"CVE-2025-{n % 7:04d}:openssl:3.0.{n % 3}:3.0.9:{SEVERITIES[n % 4]}",
                 f"CVE-2024-{n:04d}:zlib:1.2.13::{SEVERITIES[(n + 1) % 4]}",
                 f"CVE-2023-0001:curl:8.0:{'8.1' if n % 2 else ''}:High"]
        store.record_scan(success(f"sha256:{n:02d}a", specs, at(0), repository=repo), at(0))
        store.record_scan(success(f"sha256:{n:02d}b", [*specs[:2], "CVE-2023-0001:curl:8.2::High"],
                                  at(0), repository=repo), at(0))
    store.close()


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('many') / 'history.db'}"
    seed_many(url)
    return url


def listing(url: str, *args: str) -> list[dict[str, Any]]:
    proc = scanwatch("findings", "--database", url, "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list)
    return rows


def order_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (not r["fixed"], -Severity.from_name(r["severity"]), r["package"], r["vulnerability"],
            r["registry"], r["project"], r["repository"])


def test_the_full_listing_is_in_order_across_repository_batches(many: str) -> None:
    rows = listing(many)
    assert len(rows) == REPOSITORIES * 3
    assert rows == sorted(rows, key=order_key)
    curl = next(r for r in rows if r["package"] == "curl" and r["repository"] == "svc-01")
    assert (curl["installed"], curl["fixed"], curl["digests"], curl["tags"]) == (
        "8.0, 8.2", "8.1", ["sha256:01a", "sha256:01b"], ["1.0", "latest"])
    assert curl["installed_versions"] == [{"version": "8.0", "digests": ["sha256:01a"]},
                                          {"version": "8.2", "digests": ["sha256:01b"]}]


def test_a_limit_is_the_first_rows_of_the_full_listing(many: str) -> None:
    full = listing(many)
    for limit in ("1", "7", "200"):
        assert listing(many, "--limit", limit) == full[:int(limit)]
    assert listing(many, "--all") == full


@pytest.mark.parametrize("args", [
    pytest.param(["--fixable"], id="fixable"),
    pytest.param(["--severity", "high"], id="severity"),
    pytest.param(["--fixable", "--severity", "critical"], id="fixable_critical"),
    pytest.param(["--repository", "svc-03"], id="repository"),
    pytest.param(["--package", "zlib", "--severity", "medium"], id="package"),
])
def test_filters_in_sql_keep_what_the_full_listing_has(many: str, args: list[str]) -> None:
    full = listing(many)
    got = listing(many, *args)
    assert got and got == [r for r in full if _matches(r, args)]
    assert listing(many, *args, "--limit", "3") == got[:3]


def _matches(r: dict[str, Any], args: list[str]) -> bool:
    if "--fixable" in args and not r["fixed"]:
        return False
    if "--severity" in args:
        floor = Severity.from_name(args[args.index("--severity") + 1])
        if Severity.from_name(r["severity"]) < floor:
            return False
    if "--package" in args and r["package"] != args[args.index("--package") + 1]:
        return False
    return "--repository" not in args or r["repository"] == args[args.index("--repository") + 1]


def test_jsonl_and_csv_stream_the_same_rows_as_json(many: str) -> None:
    full = listing(many)
    lines = scanwatch("findings", "--database", many, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == full
    table = csv.DictReader(io.StringIO(scanwatch("findings", "--database", many,
                                                 "--format", "csv").stdout))
    assert [(r["vulnerability"], r["repository"], r["digests"]) for r in table] == [
        (r["vulnerability"], r["repository"], " ".join(r["digests"])) for r in full]


def test_an_empty_listing_is_still_one_json_document(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    open_store(url).close()
    assert listing(url) == []
    header = scanwatch("findings", "--database", url, "--format", "csv").stdout
    assert header.startswith("package,installed,fixed,vulnerability,severity,")


def test_on_a_terminal_the_table_is_the_first_page_and_counts_the_rest(many: str) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 16, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "findings", "--database", many],
                            stdout=follower, stderr=subprocess.PIPE, close_fds=True, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    lines = out.decode().replace("\r\n", "\n").splitlines()
    assert lines[0].split()[:2] == ["PACKAGE", "INSTALLED"]
    assert len(lines) == 2 + 10 + 1  # header, rule, 16 - 6 rows, the count
    assert lines[-1] == f"… and {REPOSITORIES * 3 - 10} more (--all lists every one, " \
                        "--limit N the first N)"


def test_by_image_counts_each_repository_worst_first(many: str) -> None:
    proc = scanwatch("findings", "--database", many, "--by", "image", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    images = json.loads(proc.stdout)
    assert len(images) == REPOSITORIES
    first = images[0]
    assert first["severities"]["Critical"] == max(i["severities"]["Critical"] for i in images)
    svc1 = next(i for i in images if i["repository"] == "svc-01")
    assert (svc1["image"], svc1["findings"], svc1["fixable"]) == (f"{REG}/payments/svc-01", 3, 2)
    assert svc1["severities"] == {"Critical": 0, "High": 2, "Medium": 1, "Low": 0,
                                  "Unknown": 0, "None": 0}


@pytest.mark.parametrize("name", ["alpine-310.json.golden", "debian-buster.json.golden",
                                  "npm.json.golden"])
def test_by_action_is_report_show_by_action_for_the_same_report(
        tmp_path: Path, trivy_fixtures: Path, name: str) -> None:
    path = trivy_fixtures / name
    report = load_report_file(path)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = open_store(url)
    store.record_inventory(REG, [artifact("sha256:x", "1.0")], at(0))
    store.record_scan(ScanResult(ref("sha256:x"), ScanState.SUCCESS, "rep-x", "manual",
                                 started_at=at(0), finished_at=at(0),
                                 scanner=ScannerInfo("Trivy", "", "0.58"),
                                 scanner_db_updated_at=at(0), report=report), at(0))
    store.close()
    shown = scanwatch("report", "show", str(path), "--by", "action", "--format", "json")
    ours = scanwatch("findings", "--database", url, "--by", "action", "--format", "json")
    assert ours.returncode == 0, ours.stderr
    # The lineage fields differ by nature: a Trivy file names each vulnerability's layer
    # (report show), Harbor's reports do not (findings); everything else is the same list.
    lineage = ("source", "base_image", "rebuild_on", "build_step")

    def plain(out: str) -> list[dict[str, object]]:
        return [{k: v for k, v in row.items() if k not in lineage} for row in json.loads(out)]
    assert plain(ours.stdout) == plain(shown.stdout) != []


@pytest.mark.parametrize("query", [
    pytest.param(findings.FindingQuery(), id="everything"),
    pytest.param(findings.FindingQuery(min_severity=Severity.CRITICAL, fixable=True),
                 id="fixable_critical"),
])
def test_the_listing_reads_through_its_index(many: str, query: findings.FindingQuery) -> None:
    store = open_store(many)
    try:
        with store.engine.connect() as conn:
            sql = str(findings.in_order(query, None).compile(
                store.engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        store.close()
    assert "USING INDEX ix_finding_order" in plan
