"""JSON from outside is parsed once into values no later stage has to distrust."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from daemon.harbor import inbound


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('{"PkgName": "zlib\\ud800"}', {"PkgName": "zlib\ufffd"}, id="lone-surrogate"),
    pytest.param('{"a": ["x\\udfff", ["\\u001b[31m"]]}', {"a": ["x\ufffd", ["\ufffd[31m"]]},
                 id="in-lists"),
    pytest.param('{"k\\u0007": "bell"}', {"k\ufffd": "bell"}, id="control-in-a-key"),
    pytest.param('{"d": "line\\r\\nnext\\ttab\\u009b"}', {"d": "line\nnext\ttab\ufffd"},
                 id="crlf-tab-c1"),
    pytest.param('{"ok": "\\ud83d\\ude00 caf\\u00e9"}', {"ok": "\U0001f600 café"},
                 id="valid-pairs-kept"),
    pytest.param('["\\ud800"]', ["\ufffd"], id="top-level-list"),
    pytest.param('{"s": NaN, "t": -Infinity}', {"s": None, "t": None}, id="non-finite"),
])
def test_it_cleans_strings_and_numbers(text: str, expected: Any) -> None:
    assert inbound.loads(text) == expected
    # Bytes (what the client hands over) take the orjson path where nothing needs cleaning:
    # the same values either way.
    assert inbound.loads(text.encode()) == expected


@pytest.mark.parametrize("raw", [
    pytest.param(b'{"d": "del\x7f"}', id="raw-del"),
    pytest.param('{"d": "c1\u0085"}'.encode(), id="raw-c1"),
])
def test_raw_control_characters_in_bytes_are_cleaned(raw: bytes) -> None:
    assert inbound.loads(raw) == {"d": raw.decode()[7:-3] + "\ufffd"}


def test_real_trivy_reports_read_the_same_on_both_paths(shared_dir: Path) -> None:
    for path in sorted((shared_dir / "fixtures" / "trivy").glob("*.json.golden")):
        data = path.read_bytes()
        assert inbound.loads(data) == inbound.loads(data.decode()), path.name


def test_a_5000_digit_integer_reads_as_an_infinite_float() -> None:
    value = inbound.loads('{"unused": ' + "9" * 5000 + ', "n": 12}')
    assert math.isinf(value["unused"]) and value["n"] == 12


def test_deep_nesting_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deep"):
        inbound.loads("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("data", [
    pytest.param("\ufeff{}".encode(), id="utf8-bom"),
    pytest.param(b"{}", id="plain"),
])
def test_utf8_bytes_are_read(data: bytes) -> None:
    assert inbound.loads(data) == {}


def test_utf16_bytes_are_not_json() -> None:
    with pytest.raises(ValueError):
        inbound.loads("{}".encode("utf-16"))
