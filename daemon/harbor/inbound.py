"""JSON from outside (a registry's body, a report file), parsed once into values no later stage
has to distrust.

- Strings: a lone UTF-16 surrogate (``"zlib\\ud800"``, valid JSON text but no character) becomes
  U+FFFD, and so does a control character other than tab and newline (an ESC sequence would
  drive the terminal of whoever reads a table; a CR would overwrite its line): SQLite, the
  terminal and every renderer then see ordinary text. Valid text is left exactly as it is.
- Numbers: ``NaN``/``Infinity`` become ``null``, and an integer too long for Python's int
  conversion (4300 digits) becomes a float (infinite), so that a field scanwatch does not read
  cannot fail the read; the readers take a non-finite number for no number.
- Nesting too deep for the parser is a ``ValueError``, like any other JSON that cannot be read.

Bytes with none of those escapes, no DEL and no C1 character (every listing and report Harbor
sends, nearly: Go's ``\\u003c`` and the like need no cleaning) go to orjson, about 6x faster
than the standard parser, with nothing to clean (bench/client.py); anything orjson refuses
(a BOM, ``NaN``, an infinite number, deep nesting) takes the careful path below, which
decides. orjson reads an integer beyond 64 bits as a float: no field scanwatch reads holds one.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson

MAX_INT_DIGITS = 4000  # below sys.get_int_max_str_digits()'s default of 4300
# Escapes or characters that call for cleaning; absent (nearly always), the C parser runs alone.
_SUSPECT = re.compile(r"\\u(?:[dD][89a-fA-F]|00[01]|007[fF]|00[89])|[\x7f-\x9f]")
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|00[01]|007[fF]|00[89])")
_BAD_CHARS = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with each lone surrogate and control character (tab, LF kept) as U+FFFD."""
    if not _BAD_CHARS.search(text):
        return text
    return _BAD_CHARS.sub("\ufffd", text.replace("\r\n", "\n"))


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Objects are built innermost first, so one level of lists here reaches every string.
    return {clean(k): _clean_value(v) for k, v in pairs}


def _plain(data: bytes | bytearray) -> bool:
    """No escape, DEL or C1 character (U+0080-U+009F: UTF-8 ``\\xc2\\x80-\\x9f``) that
    could call for cleaning. (``_SUSPECT`` over the decoded text costs 30x this: its
    alternation has no literal prefix to scan for.)"""
    return (not _SUSPECT_ESCAPE.search(data) and b"\x7f" not in data
            and b"\xc2" not in data)


def _int(digits: str) -> int | float:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else float(digits)


def loads(data: str | bytes | bytearray) -> Any:
    """Parse JSON text (bytes: UTF-8, a BOM accepted) as described above. ``ValueError`` for
    anything that is not JSON, including bytes that are not UTF-8 and nesting too deep."""
    if isinstance(data, (bytes, bytearray)) and _plain(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the careful path decides (and words the error)
    text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else data
    hook = _pairs if _SUSPECT.search(text) else None
    try:
        value = json.loads(text, parse_int=_int, parse_constant=lambda _: None,
                           object_pairs_hook=hook)
    except RecursionError:
        raise ValueError("nested too deep to read") from None
    return _clean_value(value) if hook is not None else value


R = TypeVar("R")
# One thread for the parses a run would otherwise do on its event loop (a report's JSON and
# its normalisation: milliseconds each, a hundred at once when a batch of reports arrives).
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scanwatch-parse")


async def off_loop(fn: Callable[..., R], /, *args: Any) -> R:
    """``fn(*args)`` on the parsing thread, one call at a time, while the loop runs on."""
    return await asyncio.get_running_loop().run_in_executor(_PARSER, fn, *args)
