"""`scanwatch report show|diff` on real Trivy outputs and hand-written Harbor reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import main
from daemon.model import REPORT_MIME_HARBOR_V10, REPORT_MIME_V11

FIXTURES = (
    "alpine-310.json.golden",
    "centos-7.json.golden",
    "debian-buster.json.golden",
    "npm.json.golden",
    "sl-micro-rancher5.4.json.golden",
)
SCANWATCH = Path(sys.executable).with_name("scanwatch")
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def vuln(
    vid: str, pkg: str, ver: str, sev: str = "High", fix: str | None = "", **over: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": vid, "package": pkg, "version": ver, "fix_version": fix, "severity": sev,
        "status": "affected", "description": "", "links": [""], "cwe_ids": [""],
        "artifact_digests": [D1], "preferred_cvss": {"score_v3": 0, "score_v2": None,
                                                     "vector_v3": "", "vector_v2": ""},
        "vendor_attributes": {"CVSS": {"nvd": {"V2Score": 5.0, "V2Vector": "AV:N"}}},
    }
    base.update(over)
    return base


def harbor_file(
    tmp_path: Path, name: str, items: list[dict[str, Any]], mime: str | None = REPORT_MIME_V11
) -> Path:
    body: dict[str, Any] = {
        "generated_at": "2026-03-01T10:00:00.123456789Z",
        "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.56.1"},
        "severity": "High" if items else "",
        "vulnerabilities": items,
    }
    path = tmp_path / name
    path.write_text(json.dumps({mime: body} if mime else body), encoding="utf-8")
    return path


# --- show --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES, ids=FIXTURES)
def test_show_lists_every_real_trivy_output_as_json(
    capsys: pytest.CaptureFixture[str], trivy_fixtures: Path, name: str
) -> None:
    source = json.loads((trivy_fixtures / name).read_text())
    expected = {
        (v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"])
        for r in source.get("Results", []) for v in r.get("Vulnerabilities") or []
    }
    code, out, err = run(capsys, "report", "show", str(trivy_fixtures / name), "--format", "json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert {(r["id"], r["package"], r["version"]) for r in rows} == expected
    for row in rows:
        assert row["severity"] in ("Critical", "High", "Medium", "Low", "None", "Unknown")
        assert {"fix_version", "status", "cvss_v3"} <= row.keys()


@pytest.mark.parametrize("name", FIXTURES, ids=FIXTURES)
def test_show_prints_a_table_most_severe_first_with_a_summary(
    capsys: pytest.CaptureFixture[str], trivy_fixtures: Path, name: str
) -> None:
    code, out, _ = run(capsys, "report", "show", str(trivy_fixtures / name))
    assert code == 0
    lines = out.strip().splitlines()
    rows = json.loads((trivy_fixtures / name).read_text()).get("Results", [])
    count = sum(len(r.get("Vulnerabilities") or []) for r in rows)
    assert lines[-1].startswith(f"{trivy_fixtures / name}: {count} vulnerabilit")
    order = ["Critical", "High", "Medium", "Low", "None", "Unknown"]
    severities = [line.split()[0] for line in lines[2:-2]]
    assert len(severities) == count
    assert severities == sorted(severities, key=order.index)


def test_show_runs_as_a_real_command(trivy_fixtures: Path) -> None:
    proc = subprocess.run(
        [str(SCANWATCH), "report", "show", str(trivy_fixtures / "debian-buster.json.golden")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SCANWATCH_CONFIG": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[2].split()[:3] == ["Critical", "CVE-2019-18224", "libidn2-0"]
    assert "2 vulnerabilities (1 Critical, 1 Low), 1 with a fix" in lines[-1]


def test_show_reads_harbor_quirks_into_clean_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    items = [
        vuln("CVE-2", "zlib", "1.2", "Negligible", None,
             vendor_attributes=None, preferred_cvss=None),
        vuln("CVE-1", "openssl", "3.0", "Critical", "3.1", artifact_digests=[D2, D1]),
        vuln("CVE-1", "openssl", "3.0", "Low", "", artifact_digests=[D1]),
    ]
    path = harbor_file(tmp_path, "report.txt", items, REPORT_MIME_HARBOR_V10)
    code, out, _ = run(capsys, "report", "show", str(path), "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["id"], r["severity"], r["fix_version"]) for r in rows] == [
        ("CVE-1", "Critical", "3.1"), ("CVE-2", "None", ""),
    ]
    assert rows[0]["artifact_digests"] == [D1, D2]
    assert all(r["links"] == [] and r["cwe_ids"] == [] and r["cvss_v3"] is None for r in rows)


@pytest.mark.parametrize(
    "mime", [REPORT_MIME_V11, REPORT_MIME_HARBOR_V10, None], ids=["v1.1", "harbor-v1.0", "bare"]
)
def test_show_reads_a_clean_harbor_report_with_blank_severity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mime: str | None
) -> None:
    path = harbor_file(tmp_path, "clean.json", [], mime)
    code, out, _ = run(capsys, "report", "show", str(path))
    assert code == 0
    assert out.strip() == f"{path}: 0 vulnerabilities; scanner Trivy v0.56.1"


# --- diff --------------------------------------------------------------------------------------


def test_diff_of_a_report_with_itself_is_all_unchanged(
    capsys: pytest.CaptureFixture[str], trivy_fixtures: Path
) -> None:
    for name in FIXTURES:
        path = str(trivy_fixtures / name)
        code, out, _ = run(capsys, "report", "diff", path, path, "--format", "json")
        assert code == 0
        data = json.loads(out)
        count = len(json.loads(run(capsys, "report", "show", path, "--format", "json")[1]))
        assert data == {"new": [], "fixed": [], "fix_available": [], "severity_changed": [],
                        "unchanged": count}


@pytest.mark.parametrize(
    ("old", "new", "new_ids", "fixed_ids"),
    [
        ("debian-buster.json.golden", "centos-7.json.golden",
         ["CVE-2018-0734", "CVE-2019-1559", "CVE-2019-18276"],
         ["CVE-2019-18224", "CVE-2019-18276"]),
        ("sl-micro-rancher5.4.json.golden", "npm.json.golden", ["CVE-2019-11358"], []),
        ("alpine-310.json.golden", "sl-micro-rancher5.4.json.golden", [],
         ["CVE-2019-1549", "CVE-2019-1549", "CVE-2019-1551", "CVE-2019-1551"]),
    ],
    ids=["bash-at-another-version-is-fixed-and-new", "from-clean", "to-clean"],
)
def test_diff_compares_real_trivy_outputs_on_exact_keys(
    capsys: pytest.CaptureFixture[str], trivy_fixtures: Path, old: str, new: str,
    new_ids: list[str], fixed_ids: list[str],
) -> None:
    code, out, _ = run(capsys, "report", "diff", str(trivy_fixtures / old),
                       str(trivy_fixtures / new), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [o["id"] for o in data["new"]] == new_ids
    assert [o["id"] for o in data["fixed"]] == fixed_ids
    assert data["unchanged"] == 0


def test_diff_reports_every_kind(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old = harbor_file(tmp_path, "old.json", [
        vuln("CVE-1", "openssl", "3.0", "High", ""),
        vuln("CVE-2", "zlib", "1.2", "Medium", ""),
        vuln("CVE-3", "bash", "5.0", "Low", ""),
        vuln("CVE-4", "curl", "8.0", "Low", "8.1"),
    ])
    new = harbor_file(tmp_path, "new.json", [
        vuln("CVE-4", "curl", "8.0", "Low", "8.1"),
        vuln("CVE-1", "openssl", "3.0", "Critical", "3.1"),
        vuln("CVE-2", "zlib", "1.2", "Low", None),
        vuln("CVE-5", "glibc", "2.36", "High", ""),
    ], mime=None)
    code, out, _ = run(capsys, "report", "diff", str(old), str(new), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [o["id"] for o in data["new"]] == ["CVE-5"]
    assert [o["id"] for o in data["fixed"]] == ["CVE-3"]
    assert [(o["id"], o["fix_version"]) for o in data["fix_available"]] == [("CVE-1", "3.1")]
    assert [(o["id"], o["from"], o["to"]) for o in data["severity_changed"]] == [
        ("CVE-1", "High", "Critical"), ("CVE-2", "Medium", "Low"),
    ]
    assert data["unchanged"] == 1

    code, out, _ = run(capsys, "report", "diff", str(old), str(new))
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines[2:-2]] == [
        "new", "fix_available", "severity_changed", "severity_changed", "fixed",
    ]
    assert "High → Critical" in lines[4]
    assert lines[-1] == "1 new, 1 fix available, 2 severity changed, 1 fixed; 1 unchanged"


def test_diff_runs_as_a_real_command_and_exits_0_with_differences(trivy_fixtures: Path) -> None:
    proc = subprocess.run(
        [str(SCANWATCH), "report", "diff", str(trivy_fixtures / "alpine-310.json.golden"),
         str(trivy_fixtures / "npm.json.golden")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == (
        "1 new, 0 fix available, 0 severity changed, 4 fixed; 0 unchanged"
    )


def test_diff_help_explains_the_exact_key_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "diff", "--help"])
    assert exited.value.code == 0
    assert "exact key" in " ".join(capsys.readouterr().out.split())


def test_report_alone_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "report")
    assert code == 2
    assert "show" in err and "diff" in err


# --- bad input ---------------------------------------------------------------------------------

BAD = {
    "not-json": "Harbor says hello",
    "truncated": '{"' + REPORT_MIME_V11 + '": {"vulnerabilities": [{"id": "CVE-1", "pack',
    "wrong-types": json.dumps({REPORT_MIME_V11: {"vulnerabilities": "none"}}),
    "a-list": json.dumps([{"id": "CVE-1"}]),
    "missing-package": json.dumps({"vulnerabilities": [{"id": "CVE-1", "version": "1"}]}),
    "empty-object": "{}",
    "neither": json.dumps({"hello": "world"}),
}


@pytest.mark.parametrize("case", sorted(BAD), ids=sorted(BAD))
@pytest.mark.parametrize("command", ["show", "diff-old", "diff-new"])
def test_a_malformed_file_is_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trivy_fixtures: Path, case: str,
    command: str,
) -> None:
    bad = tmp_path / f"{case}.json"
    bad.write_text(BAD[case], encoding="utf-8")
    good = str(trivy_fixtures / "npm.json.golden")
    argv = {
        "show": ["report", "show", str(bad)],
        "diff-old": ["report", "diff", str(bad), good],
        "diff-new": ["report", "diff", good, str(bad)],
    }[command]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"scanwatch: {bad}: ")
    assert "Traceback" not in err


def test_a_malformed_file_exits_2_from_the_real_command(tmp_path: Path) -> None:
    bad = tmp_path / "report.txt"
    bad.write_text('{\n  "vulnerabilities": [\n    {"id": 1}\n  ]\n}\n', encoding="utf-8")
    proc = subprocess.run(
        [str(SCANWATCH), "report", "show", str(bad), "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        f"scanwatch: {bad}: vulnerabilities[0].id: expected a string, got a number\n"
    )
