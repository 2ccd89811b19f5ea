"""`scanwatch history` and `scanwatch findings` as a user runs them, on a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, success


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("cmd")
    url = f"sqlite:///{tmp / 'history.db'}"
    store = open_store(url)
    store.record_inventory(REG, [artifact("sha256:a", "latest")], at(0))
    store.record_scan(success("sha256:a", [
        "CVE-1:openssl:3.0.13:3.0.15:Critical", "CVE-2:zlib:1.2.13::High",
        "CVE-3:curl:8.0:8.1:Low"], at(0)), at(0))
    delta = store.record_inventory(REG, [artifact("sha256:a"), artifact("sha256:b", "latest")],
                                   at(1))
    store.resolve_removed(REG, delta.removed, at(1))
    store.record_scan(success("sha256:b", ["CVE-2:zlib:1.2.13::High", "CVE-3:curl:8.0:8.1:Low",
                                           "CVE-4:glibc:2.36::Medium"], at(1)), at(1))
    store.close()
    config = tmp / "config.toml"
    config.write_text(f'[daemon]\ndatabase = "{url}"\n\n[sla]\nHigh = "30d"\n')
    return url, config


def scanwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True,
                          text=True, timeout=60)


def test_findings_lists_fixable_first_with_installed_and_fixed(seeded: tuple[str, Path]) -> None:
    url, _ = seeded
    proc = scanwatch("findings", "--database", url, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["package"], r["installed"], r["fixed"], r["vulnerability"]) for r in rows] == [
        ("curl", "8.0", "8.1", "CVE-3"), ("zlib", "1.2.13", None, "CVE-2"),
        ("glibc", "2.36", None, "CVE-4")]
    assert rows[0]["tags"] == ["latest"] and rows[0]["digests"] == ["sha256:b"]
    # Each installed version with the digests that carry it; null, not "" or "-", for absent.
    assert rows[0]["installed_versions"] == [{"version": "8.0", "digests": ["sha256:b"]}]
    assert rows[0]["ignore_reason"] is None


@pytest.mark.parametrize(("args", "vulns"), [
    pytest.param(["--fixable"], ["CVE-3"], id="fixable"),
    pytest.param(["--severity", "high"], ["CVE-2"], id="severity_and_above"),
    pytest.param(["--repository", "other"], [], id="other_repository"),
    pytest.param(["--project", "payments", "--registry", REG], ["CVE-3", "CVE-2", "CVE-4"],
                 id="registry_and_project"),
])
def test_findings_filters(seeded: tuple[str, Path], args: list[str], vulns: list[str]) -> None:
    proc = scanwatch("findings", "--database", seeded[0], "--format", "csv", *args)
    assert proc.returncode == 0, proc.stderr
    assert [r["vulnerability"] for r in csv.DictReader(io.StringIO(proc.stdout))] == vulns


def test_findings_reads_the_database_and_sla_from_the_config(seeded: tuple[str, Path]) -> None:
    proc = scanwatch("findings", "--config", str(seeded[1]))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["PACKAGE", "INSTALLED"]
    zlib = next(line for line in lines if "zlib" in line)
    assert "1.2.13 → (no fix yet)" in zlib and "overdue" in zlib  # High, 30d, opened in March
    overdue = scanwatch("findings", "--config", str(seeded[1]), "--overdue", "--format", "json")
    assert [r["vulnerability"] for r in json.loads(overdue.stdout)] == ["CVE-2"]


def test_history_shows_each_scan_and_the_changes_it_brought(seeded: tuple[str, Path]) -> None:
    proc = scanwatch("history", f"{REG}/payments/api", "--database", seeded[0],
                     "--format", "json")
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert [e["digest"] for e in entries] == ["sha256:a", "sha256:b"]
    assert [(c["kind"], c["reason"], c["count"]) for c in entries[0]["changes"]] == [
        ("new", "first_sight", 3)]
    assert sorted((c["kind"], c["reason"], c["vulnerability"]) for c in entries[1]["changes"]) == [
        ("fixed", "fixed_by_rebuild", "CVE-1"), ("new", "new_image", "CVE-4")]
    table = scanwatch("history", f"{REG}/payments/api:latest", "--database", seeded[0])
    assert table.returncode == 0, table.stderr
    assert "fixed (fixed_by_rebuild): CVE-1 in openssl 3.0.13" in table.stdout
    one = scanwatch("history", f"{REG}/payments/api@sha256:b", "--database", seeded[0],
                    "--format", "json")
    assert [e["digest"] for e in json.loads(one.stdout)] == ["sha256:b"], one.stderr


@pytest.mark.parametrize("target", [
    pytest.param(f"{REG}/payments/nope", id="repository"),
    pytest.param(f"{REG}/payments/api:nope", id="tag"),
    pytest.param("elsewhere/payments/api", id="registry"),
    pytest.param("just-a-name", id="malformed"),
    pytest.param(f"{REG}/payments/api@sha256:nope", id="digest"),
    pytest.param(f"{REG}/payments/*", id="glob"),
])
def test_history_of_an_unknown_target_is_one_line_and_exit_2(
    seeded: tuple[str, Path], target: str,
) -> None:
    proc = scanwatch("history", target, "--database", seeded[0])
    assert proc.returncode == 2
    assert proc.stderr.startswith("scanwatch: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def _ignore_config(tmp: Path, url: str, expires: str) -> Path:
    config = tmp / "config.toml"
    config.write_text(f"""\
[daemon]
database = "{url}"

[[receiver]]
name = "hook"
urls = ["json://127.0.0.1:9/nobody"]

[[route]]
receivers = ["hook"]
min_severity = "Low"

[[ignore]]
vulnerability = "cve-2024-*"
reason = "not reachable in our build"
expires = {expires}
""")
    return config


@pytest.mark.parametrize(("days", "hidden"), [
    pytest.param(0, True, id="through-its-expiry-day"),
    pytest.param(-1, False, id="expired-yesterday"),
])
def test_findings_and_alerts_preview_apply_an_ignore_rule_from_the_file_at_once(
    tmp_path: Path, days: int, hidden: bool
) -> None:
    """A glob rule written into the config (no run since): `findings` and `alerts preview`
    agree with each other, and with the rule's expiry day in UTC."""
    from datetime import UTC, datetime, timedelta

    url = f"sqlite:///{tmp_path / 'history.db'}"
    store = open_store(url)
    store.record_inventory(REG, [artifact("sha256:a", "latest")], at(0))
    store.record_scan(success("sha256:a", ["CVE-1:openssl:3.0.13:3.0.15:Critical"], at(0)), at(0))
    store.record_scan(success("sha256:a", [
        "CVE-1:openssl:3.0.13:3.0.15:Critical", "CVE-2024-7:zlib:1.2.13:1.2.14:High",
        "CVE-2025-1:curl:8.0:8.1:High"], at(1)), at(1))
    store.close()
    expires = (datetime.now(UTC) + timedelta(days=days)).date().isoformat()
    config = _ignore_config(tmp_path, url, expires)

    listed = scanwatch("findings", "--config", str(config), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    shown = {r["vulnerability"] for r in json.loads(listed.stdout)}
    every = json.loads(scanwatch("findings", "--config", str(config), "--format", "json",
                                 "--include-ignored").stdout)
    preview = scanwatch("alerts", "preview", "--config", str(config), "--format", "json")
    assert preview.returncode == 0, preview.stderr
    alerted = {v["id"] for m in json.loads(preview.stdout)
               for section in ("fix_now", "no_fix") for a in m[section]
               for v in a["vulnerabilities"]}

    assert ("CVE-2024-7" not in shown) is hidden
    assert ("CVE-2024-7" not in alerted) is hidden
    assert {"CVE-1", "CVE-2025-1"} <= shown and "CVE-2025-1" in alerted
    reasons = {r["vulnerability"]: r["ignore_reason"] for r in every}
    assert reasons["CVE-2024-7"] == (
        f"not reachable in our build (ignored until {expires})" if hidden else None)
