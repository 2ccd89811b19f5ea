"""Reports that are valid JSON but odd, read by the real ``scanwatch report show`` in a
subprocess, in both forms: each is read (exit 0, JSON output still JSON) or refused with one
line naming the file (exit 2); never a traceback.

Built from a real Trivy output (``../shared/fixtures/trivy/alpine-310.json.golden``) with one
thing changed each.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from runkit import SCANWATCH, TIMEOUT

FORMATS = [pytest.param("table", id="table"), pytest.param("json", id="json")]


def show(path: Path, form: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCANWATCH, "report", "show", str(path), "--format", form],
                          capture_output=True, text=True, timeout=TIMEOUT)


def strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def alpine(trivy_fixtures: Path) -> str:
    return (trivy_fixtures / "alpine-310.json.golden").read_text()


def first_package(text: str) -> str:
    return str(json.loads(text)["Results"][0]["Vulnerabilities"][0]["PkgName"])


READ: dict[str, Callable[[str], str]] = {
    "lone-surrogate": lambda t: t.replace(f'"{first_package(t)}"',
                                          f'"{first_package(t)}\\ud800"', 1),
    "escape-sequence": lambda t: t.replace(f'"{first_package(t)}"',
                                           f'"{first_package(t)}\\u001b[2J"', 1),
    "nan-score": lambda t: t.replace('"V3Score": 5.3', '"V3Score": NaN'),
    "infinite-score": lambda t: t.replace('"V3Score": 5.3', '"V3Score": 1e999'),
    "5000-digit-unused": lambda t: t.replace('"SchemaVersion": 2',
                                             '"Unused": ' + "7" * 5000 + ', "SchemaVersion": 2'),
}


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("case", list(READ), ids=list(READ))
def test_an_odd_but_valid_report_is_read(tmp_path: Path, alpine: str, case: str,
                                         form: str) -> None:
    changed = READ[case](alpine)
    assert changed != alpine
    path = tmp_path / "report.json"
    path.write_text(changed, encoding="utf-8", errors="surrogatepass")
    result = show(path, form)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "\x1b" not in result.stdout
    shown = result.stdout
    if form == "json":
        shown = json.dumps(strict_json(result.stdout), ensure_ascii=False)
    if case in ("lone-surrogate", "escape-sequence"):
        assert "\ufffd" in shown


REFUSED: dict[str, tuple[Callable[[str], bytes], str]] = {
    "deep-nesting": (lambda t: ("[" * 100_000 + "]" * 100_000).encode(),
                     "not a readable JSON report (nested too deep to read)"),
    "utf-16": (lambda t: t.encode("utf-16"), "not UTF-8 text, so not a JSON report"),
}


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_unreadable_input_is_one_line_and_exit_2(tmp_path: Path, alpine: str, case: str,
                                                 form: str) -> None:
    make, message = REFUSED[case]
    path = tmp_path / "report.json"
    path.write_bytes(make(alpine))
    result = show(path, form)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"scanwatch: {path}: {message}"]


def test_a_utf8_bom_is_accepted(tmp_path: Path, alpine: str) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b"\xef\xbb\xbf" + alpine.encode())
    assert show(path, "json").returncode == 0
