"""Tables that fit a terminal and cannot be driven by scan data, as real subprocesses: escape
sequences in a report never reach the terminal, a pseudo-terminal of 80 columns gets lines of
at most 80 with every CVE id whole, `| head` ends quietly with exit 0, and an empty result says
so with exit 0."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from runkit import SCANWATCH, TIMEOUT, on_terminal

HOSTILE = "zlib\x1b[2J\x1b]0;owned\x07\x9b31m"


def hostile_report(trivy_fixtures: Path, directory: Path, copies: int = 1) -> Path:
    """alpine-310's real report, its first package renamed with escape sequences, and its first
    vulnerability repeated under new ids ``copies`` times."""
    report: dict[str, Any] = json.loads((trivy_fixtures / "alpine-310.json.golden").read_text())
    vulns = report["Results"][0]["Vulnerabilities"]
    vulns[0]["PkgName"] = HOSTILE
    vulns[0]["Title"] = "\x1b[31mred\x1b[0m"
    for n in range(copies - 1):
        extra = copy.deepcopy(vulns[1])
        extra["VulnerabilityID"] = f"CVE-2099-{10000 + n}"
        extra["PkgName"] = f"package-with-a-rather-long-name-{n}"
        vulns.append(extra)
    path = directory / "hostile.json"
    path.write_text(json.dumps(report))
    return path


def in_pty(args: list[str], columns: int = 80) -> str:
    """The output of ``scanwatch ARGS`` on a pseudo-terminal ``columns`` wide."""
    code, out = on_terminal(args, columns=columns)
    assert code == 0, out
    return out


@pytest.mark.parametrize("fmt", ["table", "action"], ids=["by-vulnerability", "by-action"])
def test_escape_sequences_from_a_report_never_reach_the_terminal(
    trivy_fixtures: Path, tmp_path: Path, fmt: str
) -> None:
    path = hostile_report(trivy_fixtures, tmp_path)
    args = ["report", "show", str(path)] + (["--by", "action"] if fmt == "action" else [])
    for out in (in_pty(args), subprocess.run([SCANWATCH, *args], capture_output=True,
                                             text=True, timeout=TIMEOUT, check=True).stdout):
        assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
        assert "zlib\N{REPLACEMENT CHARACTER}[2J" in out


def test_a_table_fits_80_columns_and_keeps_every_cve_id_whole(
    trivy_fixtures: Path, tmp_path: Path
) -> None:
    path = hostile_report(trivy_fixtures, tmp_path, copies=5)
    out = in_pty(["report", "show", str(path)], columns=80)
    table = [ln for ln in out.splitlines() if ln.startswith(("Medium", "High", "Low", "Crit"))]
    assert table and all(len(ln) <= 80 for ln in table), out
    for n in range(4):
        assert f"CVE-2099-{10000 + n} " in out
    piped = subprocess.run([SCANWATCH, "report", "show", str(path)], capture_output=True,
                           text=True, timeout=TIMEOUT, check=True).stdout
    assert "package-with-a-rather-long-name-3" in piped  # a pipe gets every column in full


def test_a_reader_that_leaves_early_ends_the_command_quietly(
    trivy_fixtures: Path, tmp_path: Path
) -> None:
    path = hostile_report(trivy_fixtures, tmp_path, copies=4000)
    result = subprocess.run(
        ["bash", "-c", f'"{SCANWATCH}" report show "{path}" | head -n 2; '
                       'echo "status=${PIPESTATUS[0]}"'],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert result.stdout.splitlines()[-1] == "status=0"
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == ""


def test_findings_that_match_nothing_say_so_with_exit_0(tmp_path: Path) -> None:
    from daemon.store.db import open_store

    url = f"sqlite:///{tmp_path / 'history.db'}"
    open_store(url).close()
    result = subprocess.run([SCANWATCH, "findings", "--database", url, "--repository", "api"],
                            capture_output=True, text=True, timeout=TIMEOUT,
                            env={**os.environ, "SCANWATCH_CONFIG": str(tmp_path / "none.toml")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no open findings match --repository api; ")
