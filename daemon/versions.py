"""Best-effort version ordering, to find the one fix version that resolves every CVE (pure).

Strict semver (``1.2.3-rc.1+meta``) compares as semver, pre-releases first. Anything else that
starts with a digit (after an optional ``epoch:`` or ``v``) compares with dpkg's algorithm, which
also orders rpm-style and most dotted versions sensibly (``~`` sorts before everything, digits
numerically). Versions that do not start with a digit (commit hashes, ``latest``) cannot be
ordered: ``compare`` returns ``None`` and callers list them instead of choosing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEMVER = re.compile(
    r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_ORDERABLE = re.compile(r"^(?:\d+:)?v?\d[0-9A-Za-z.+~:_-]*$")


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of one version part."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_dpkg(v: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in v:
        head, _, rest = v.partition(":")
        if head.isdigit():
            epoch, v = int(head), rest
    upstream, _, revision = v.rpartition("-") if "-" in v else (v, "", "")
    return epoch, upstream.removeprefix("v"), revision


def _dpkg_cmp(a: str, b: str) -> int:
    ea, ua, ra = _split_dpkg(a)
    eb, ub, rb = _split_dpkg(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _pre_key(part: str) -> tuple[int, int | str]:
    return (0, int(part)) if part.isdigit() else (1, part)


def _semver_cmp(ma: re.Match[str], mb: re.Match[str]) -> int:
    core_a = tuple(int(ma.group(n)) for n in (1, 2, 3))
    core_b = tuple(int(mb.group(n)) for n in (1, 2, 3))
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    pa, pb = ma.group(4), mb.group(4)
    if pa == pb:
        return 0
    if pa is None:
        return 1
    if pb is None:
        return -1
    ka = [_pre_key(x) for x in pa.split(".")]
    kb = [_pre_key(x) for x in pb.split(".")]
    return -1 if ka < kb else 1


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def compare(a: str, b: str) -> int | None:
    """-1, 0 or 1 as ``a`` is older, equal or newer than ``b``; ``None`` if unorderable."""
    a, b = a.strip(), b.strip()
    if a == b:
        return 0
    ma, mb = _SEMVER.match(a), _SEMVER.match(b)
    if ma and mb:
        return _semver_cmp(ma, mb)
    if not (_ORDERABLE.match(a) and _ORDERABLE.match(b)):
        return None
    return _sign(_dpkg_cmp(a, b))


def candidates(fix_version: str) -> list[str]:
    """Trivy lists several fixes as ``"1.2.5, 2.0.1"``: one per maintained branch."""
    return [v.strip() for v in fix_version.split(",") if v.strip()]


def lowest_fix(installed: str, fix_version: str) -> str | None:
    """The lowest listed fix newer than ``installed``; ``None`` if they cannot be ordered."""
    options = candidates(fix_version)
    if len(options) == 1:
        return options[0]
    newer: list[str] = []
    for option in options:
        order = compare(option, installed)
        if order is None:
            return None
        if order > 0:
            newer.append(option)
    return highest(newer, lowest=True) if newer else None


def highest(versions: Iterable[str], *, lowest: bool = False) -> str | None:
    """The highest (or lowest) of ``versions``; ``None`` if any pair cannot be ordered."""
    best: str | None = None
    for version in versions:
        if best is None:
            best = version
            continue
        order = compare(version, best)
        if order is None:
            return None
        if (order < 0) if lowest else (order > 0):
            best = version
    return best
