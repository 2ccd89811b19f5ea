"""`scanwatch report show FILE --by action`, run as a user runs it, on real reports and versions.

The expected fixes of the Trivy fixtures were read off the files by hand: for each package
version, the highest of the FixedVersion values of its vulnerabilities.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.model import REPORT_MIME_V11

SCANWATCH = Path(sys.executable).with_name("scanwatch")


def scanwatch(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCANWATCH), *argv], capture_output=True, text=True, timeout=60,
                          check=False)


def actions(path: Path) -> list[dict[str, Any]]:
    proc = scanwatch("report", "show", str(path), "--by", "action", "--format", "json")
    assert (proc.returncode, proc.stderr) == (0, "")
    out = json.loads(proc.stdout)
    assert isinstance(out, list)
    return out


def brief(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["package"], r["installed_version"], r["fix_version"], r["ecosystem"],
             [v["id"] for v in r["vulnerabilities"]]) for r in rows]


def harbor_report(tmp_path: Path, items: list[tuple[str, str, str, str, str]]) -> Path:
    """A Harbor addition (which carries no ecosystem) of (id, package, version, fix, sev)."""
    body = {"generated_at": "2026-03-01T10:00:00Z",
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.56.1"},
            "vulnerabilities": [
                {"id": i, "package": p, "version": v, "fix_version": f, "severity": s,
                 "links": [""], "cwe_ids": [""], "artifact_digests": []}
                for i, p, v, f, s in items]}
    path = tmp_path / "harbor.json"
    path.write_text(json.dumps({REPORT_MIME_V11: body}), encoding="utf-8")
    return path


def trivy_report(tmp_path: Path, result_type: str,
                 items: list[tuple[str, str, str, str, str]]) -> Path:
    vulns = [{"VulnerabilityID": i, "PkgName": p, "InstalledVersion": v, "FixedVersion": f,
              "Severity": s.upper()} for i, p, v, f, s in items]
    body = {"SchemaVersion": 2,
            "Results": [{"Target": "t", "Type": result_type, "Vulnerabilities": vulns}]}
    path = tmp_path / "trivy.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


FIXTURE_ACTIONS = {
    "debian-buster.json.golden": [
        ("libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1", "deb", ["CVE-2019-18224"]),
        ("bash", "5.0-4", None, "deb", ["CVE-2019-18276"]),
    ],
    "alpine-310.json.golden": [  # CVE-2019-1549 is fixed in -r0, CVE-2019-1551 only in -r2
        ("libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2", "apk", ["CVE-2019-1549", "CVE-2019-1551"]),
        ("libssl1.1", "1.1.1c-r0", "1.1.1d-r2", "apk", ["CVE-2019-1549", "CVE-2019-1551"]),
    ],
    "centos-7.json.golden": [  # Medium before Low inside the action
        ("openssl-libs", "1:1.0.2k-16.el7", "1:1.0.2k-19.el7", "rpm",
         ["CVE-2019-1559", "CVE-2018-0734"]),
        ("bash", "4.2.46-31.el7", None, "rpm", ["CVE-2019-18276"]),
    ],
    "npm.json.golden": [("jquery", "3.3.9", "3.4.0", "npm", ["CVE-2019-11358"])],
    "sl-micro-rancher5.4.json.golden": [],
}


@pytest.mark.parametrize("name", sorted(FIXTURE_ACTIONS), ids=sorted(FIXTURE_ACTIONS))
def test_it_gives_each_real_trivy_reports_actions_with_the_fix_for_all(
    trivy_fixtures: Path, name: str
) -> None:
    rows = actions(trivy_fixtures / name)
    assert brief(rows) == FIXTURE_ACTIONS[name]
    for row in rows:
        assert row["candidate_fix_versions"] == []
        assert set(row) == {"package", "installed_version", "fix_version",
                            "candidate_fix_versions", "ecosystem", "vulnerabilities",
                            "source", "base_image", "rebuild_on", "build_step", "kev",
                            "kev_date_added", "kev_due_date", "epss", "epss_percentile"}
        # Without --kev/--epss files nothing is known exploited or scored.
        assert (row["kev"], row["kev_due_date"], row["epss"]) == (False, None, None)
        assert all(set(v) == {"id", "severity", "fix_version", "kev", "epss", "epss_percentile"}
                   and v["kev"] is None for v in row["vulnerabilities"])
        # Without --base the file cannot tell base layers from own ones (tests/lineage/).
        # (a file whose vulnerabilities name no layer says nothing of their source)
        assert row["source"] in ("unknown", None) and row["base_image"] is None
        assert row["rebuild_on"] is None


def test_each_vulnerability_keeps_its_own_fix_and_severity(trivy_fixtures: Path) -> None:
    libcrypto = actions(trivy_fixtures / "alpine-310.json.golden")[0]
    assert [{k: v[k] for k in ("id", "severity", "fix_version")}
            for v in libcrypto["vulnerabilities"]] == [
        {"id": "CVE-2019-1549", "severity": "Medium", "fix_version": "1.1.1d-r0"},
        {"id": "CVE-2019-1551", "severity": "Medium", "fix_version": "1.1.1d-r2"},
    ]


def test_the_table_reads_in_a_terminal(trivy_fixtures: Path) -> None:
    path = trivy_fixtures / "centos-7.json.golden"
    proc = scanwatch("report", "show", str(path), "--by", "action")
    assert (proc.returncode, proc.stderr) == (0, "")
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["SEVERITY", "PACKAGE", "INSTALLED", "UPGRADE", "TO",
                                "ECOSYSTEM", "VULNERABILITIES"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["Medium", "openssl-libs", "1:1.0.2k-16.el7", "1:1.0.2k-19.el7",
                                "rpm", "CVE-2019-1559,", "CVE-2018-0734"]
    assert lines[3].split() == ["Low", "bash", "4.2.46-31.el7", "(no", "fix", "yet)", "rpm",
                                "CVE-2019-18276"]
    assert lines[-1] == (f"{path}: 2 actions for 3 vulnerabilities "
                         "(1 with a fix, 1 without a fix yet)")
    assert max(len(line) for line in lines[:4]) <= 100


DEBIAN = [  # real versions (apt-cache madison, Debian 12): installed, then two fixes
    ("openssl", "3.0.17-1~deb12u2", "3.0.22-1~deb12u2", "3.0.20-1~deb12u2"),
    ("tzdata", "2025b-0+deb12u1", "2026b-0+deb12u1", "2026f-0+deb12u1"),
    ("libxml2", "2.9.14+dfsg-1.3~deb12u4", "2.9.14+dfsg-1.3~deb12u6", "2.9.14+dfsg-1.3~deb12u6"),
    # 7.88.1-10 is Debian 12.0's curl. Read as semver, +deb12u15 is build metadata: "equal".
    ("curl", "7.88.1-10", "7.88.1-10+deb12u5", "7.88.1-10+deb12u15"),
    ("zlib1g", "1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1", "1:1.2.13.dfsg-1+deb12u1"),
]


def _dpkg(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed here")
@pytest.mark.parametrize("source", ["harbor", "trivy"])
def test_the_chosen_fix_is_the_one_dpkg_ranks_highest(tmp_path: Path, source: str) -> None:
    items = [(f"CVE-{pkg}-{n}", pkg, installed, fix, "High")
             for pkg, installed, *fixes in DEBIAN for n, fix in enumerate(fixes)]
    path = harbor_report(tmp_path, items) if source == "harbor" else trivy_report(
        tmp_path, "debian", items)
    rows = {r["package"]: r for r in actions(path)}
    assert set(rows) == {pkg for pkg, *_ in DEBIAN}
    for pkg, _installed, *fixes in DEBIAN:
        chosen = rows[pkg]["fix_version"]
        assert chosen in fixes
        assert all(_dpkg(chosen, "ge", fix) for fix in fixes), (pkg, chosen)
        assert rows[pkg]["ecosystem"] == "deb"
    assert rows["openssl"]["fix_version"] == "3.0.22-1~deb12u2"
    assert rows["tzdata"]["fix_version"] == "2026f-0+deb12u1"
    assert rows["curl"]["fix_version"] == "7.88.1-10+deb12u15"


def test_alpine_fixes_follow_apks_rules(tmp_path: Path) -> None:
    # apk: -rN compares as a number; _p is a patch level above the release (apk-tools
    # test/unit/version.data); _rc is a pre-release below it.
    path = harbor_report(tmp_path, [
        ("CVE-1", "busybox", "1.20.1-r2", "1.20.1-r4", "High"),
        ("CVE-2", "busybox", "1.20.1-r2", "1.20.1-r10", "Medium"),
        ("CVE-3", "ncurses", "6.0-r0", "6.0_p1-r0", "Low"),
        ("CVE-4", "ncurses", "6.0-r0", "6.0_rc1-r5", "Low"),
    ])
    assert [(r["package"], r["fix_version"], r["ecosystem"]) for r in actions(path)] == [
        ("busybox", "1.20.1-r10", "apk"), ("ncurses", "6.0_p1-r0", "apk")]


def test_fixes_that_cannot_be_ordered_are_listed_for_a_person_to_choose(tmp_path: Path) -> None:
    # "1.0.0-rc.2" is below "1.0.0" for npm but above it for dpkg; nothing says which applies.
    items = [("CVE-1", "left-pad", "1.0.0-rc.1", "1.0.0-rc.2", "High"),
             ("CVE-2", "left-pad", "1.0.0-rc.1", "1.0.0", "Critical")]
    [row] = actions(harbor_report(tmp_path, items))
    assert (row["fix_version"], row["candidate_fix_versions"], row["ecosystem"]) == (
        None, ["1.0.0", "1.0.0-rc.2"], "")
    proc = scanwatch("report", "show", str(tmp_path / "harbor.json"), "--by", "action")
    assert "one of 1.0.0, 1.0.0-rc.2" in proc.stdout
    assert "1 to choose: the fixes cannot be ordered" in proc.stdout.splitlines()[-1]
    # The same versions in a report that says they are npm's have one answer.
    [row] = actions(trivy_report(tmp_path, "npm", items))
    assert (row["fix_version"], row["candidate_fix_versions"], row["ecosystem"]) == (
        "1.0.0", [], "npm")


def test_a_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    proc = scanwatch("report", "show", str(bad), "--by", "action")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and str(bad) in proc.stderr
