"""Composer's version order: PHP's ``version_compare`` on Composer-normalised versions (pure).

Composer (composer/semver ``Comparator``) orders versions with PHP's ``version_compare``
(php-src ``ext/standard/versioning.c``), which no Python library provides: the version is cut
into parts at ``.``, ``-``, ``_``, ``+`` and wherever digits meet letters; numbers compare as
numbers, words by their rank ``dev < alpha = a < beta = b < RC = rc < (a number) < pl = p``, any
other word below ``dev``. Before that, as Composer's ``VersionParser::normalize`` does, a leading
``v`` and ``+build`` metadata are dropped and the numeric core is padded to four parts, so that
``5.4``, ``5.4.0`` and ``v5.4.0.0`` are one version. Branches (``dev-main``) cannot be ordered.
"""

from __future__ import annotations

import re

_DIGITS = frozenset("0123456789")
_NUMBER = "#N#"  # how version_compare names "any number" when a number meets a word
# (prefix, rank): the first prefix a word starts with gives its rank, as in php-src.
_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3),
          ("#", 4), ("pl", 5), ("p", 5))
_CORE = re.compile(r"(\d+(?:\.\d+)*)(.*)", re.DOTALL)


def _rank(word: str) -> int:
    return next((rank for prefix, rank in _FORMS if word.startswith(prefix)), -1)


def _is_digit(c: str) -> bool:
    return c in _DIGITS


def canonical(version: str) -> tuple[str, ...]:
    """``version`` cut into parts the way ``php_canonicalize_version`` does."""
    if not version:
        return ()
    out = [version[0]]
    prev = version[0]
    for c in version[1:]:
        if c in "-_+":
            if out[-1] != ".":
                out.append(".")
        elif (not _is_digit(prev) and prev != "." and _is_digit(c)) or (
                _is_digit(prev) and not _is_digit(c) and c != "."):
            if out[-1] != ".":
                out.append(".")
            out.append(c)
        elif not (c.isascii() and c.isalnum()):
            if out[-1] != ".":
                out.append(".")
        else:
            out.append(c)
        prev = c
    return tuple(part for part in "".join(out).split(".") if part)


def _compare_parts(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    for x, y in zip(a, b, strict=False):
        if _is_digit(x[0]) and _is_digit(y[0]):
            order = (int(x) > int(y)) - (int(x) < int(y))
        else:
            rx = _rank(_NUMBER if _is_digit(x[0]) else x)
            ry = _rank(_NUMBER if _is_digit(y[0]) else y)
            order = (rx > ry) - (rx < ry)
        if order:
            return order
    if len(a) > len(b):
        rest = a[len(b):]
        return 1 if _is_digit(rest[0][0]) else _compare_parts(rest, canonical(_NUMBER))
    if len(b) > len(a):
        rest = b[len(a):]
        return -1 if _is_digit(rest[0][0]) else _compare_parts(canonical(_NUMBER), rest)
    return 0


def parse(version: str) -> tuple[str, ...] | None:
    """Composer's normal form of ``version`` as parts; ``None`` for a branch or a non-version."""
    text = version.strip()
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]
    text = text.split("+", 1)[0]
    match = _CORE.fullmatch(text)
    if match is None:  # "dev-main", "latest", "": not orderable
        return None
    core = match.group(1).split(".")
    core += ["0"] * (4 - len(core))
    return canonical(".".join(core) + match.group(2))


def compare(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """-1, 0 or 1 for two parsed versions, as ``version_compare`` answers."""
    return _compare_parts(a, b)
