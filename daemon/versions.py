"""Version order by ecosystem, to find the one fix version that resolves every CVE (pure).

Each ecosystem (``daemon/ecosystems.py``) compares with its own scheme: dpkg for ``deb``, apk
for ``apk``, rpmvercmp for ``rpm``, PEP 440 for ``pypi``, semver for ``npm`` and ``cargo``, Go
module versions (semver with ``v``, pseudo-versions, ``+incompatible``) for ``golang``, and
Maven's, RubyGems', NuGet's and Composer's own orders. The schemes are univers' (aboutcode.org),
except Composer's, which univers reads as semver: ``daemon/phpversion.py`` has it.

With no ecosystem from the report, ``resolve`` infers one from the package name and the
versions' marks (``+deb12u1``, ``-r4``, ``.el8``, a Go pseudo-version…). Versions that carry
marks of two schemes are never compared. Versions that carry none (``1.2.3``, ``5.0-4``) compare
only where dpkg, rpm, PEP 440 and semver all agree (those of them that can read both), so
``1.0.0-beta`` against ``1.0.0`` (older in semver, newer in dpkg) cannot be ordered.

"Cannot be ordered" is an answer: ``compare`` returns ``None`` and callers list the candidates.
univers is imported on the first comparison that needs it (it costs ~0.15 s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from daemon import ecosystems, phpversion

# semver.org's own expression, with the "v" (Go, npm) or "=" (npm) that registries accept.
_SEMVER = re.compile(
    r"^[v=]?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_STARTS_WITH_DIGIT = re.compile(r"^(?:\d+:)?v?\d")

# ecosystem → univers class name. "semver" is not an ecosystem: npm and cargo use it.
_UNIVERS = {
    "deb": "DebianVersion",
    "apk": "AlpineLinuxVersion",
    "rpm": "RpmVersion",
    "pypi": "PypiVersion",
    "semver": "SemverVersion",
    "golang": "GolangVersion",
    "maven": "MavenVersion",
    "gem": "RubygemsVersion",
    "nuget": "NugetVersion",
}
_STRICT_SEMVER = {"npm": "semver", "cargo": "semver", "semver": "semver", "golang": "golang"}
# The schemes asked when nothing says which one applies: all must agree.
_CONSENSUS = ("deb", "rpm", "pypi", "semver")

SCHEMES: frozenset[str] = frozenset({"deb", "apk", "rpm", "pypi", "npm", "cargo", "golang",
                                     "maven", "gem", "nuget", "composer"})


def _univers_parser(class_name: str) -> Callable[[str], Any]:
    from univers import versions as uv  # lazy: ~0.15 s, only when a comparison needs it

    return getattr(uv, class_name)  # type: ignore[no-any-return]


@lru_cache(maxsize=8192)
def _parse(scheme: str, version: str) -> Any:
    """The comparable form of ``version`` in ``scheme``; ``None`` if the scheme cannot read it."""
    if scheme == "composer":
        return phpversion.parse(version)
    if scheme in _STRICT_SEMVER:
        if not _SEMVER.match(version):
            return None  # univers coerces "1.2.3.4" into semver; npm and Go never would
        scheme, version = _STRICT_SEMVER[scheme], version.lstrip("v=")
    try:
        return _univers_parser(_UNIVERS[scheme])(version)
    except Exception:  # InvalidVersion (a ValueError) mostly; any failure means "unreadable"
        return None


def _cmp(scheme: str, x: Any, y: Any) -> int:
    if scheme == "composer":
        return phpversion.compare(x, y)
    return int(x > y) - int(x < y)


def _in_scheme(scheme: str, a: str, b: str) -> int | None:
    x, y = _parse(scheme, a), _parse(scheme, b)
    if x is None or y is None:
        return None
    return _cmp(scheme, x, y)


def _by_consensus(a: str, b: str) -> int | None:
    if not (_STARTS_WITH_DIGIT.match(a) and _STARTS_WITH_DIGIT.match(b)):
        return None  # "latest", a commit hash: no scheme orders those
    # A leading "v" is a tag convention (Go, npm, Composer), never part of a distro version.
    a, b = a.removeprefix("v"), b.removeprefix("v")
    answers = {r for s in _CONSENSUS if (r := _in_scheme(s, a, b)) is not None}
    return answers.pop() if len(answers) == 1 else None


def resolve(ecosystem: str, package: str, versions: Iterable[str]) -> str | None:
    """The ecosystem to compare ``versions`` of ``package`` in: the report's, else inferred.

    "" means none is known (compare by consensus); ``None`` that the versions come from
    different schemes and cannot be ordered at all.
    """
    if ecosystem:
        return ecosystem
    return ecosystems.infer(package, versions)


@lru_cache(maxsize=65536)
def compare(a: str, b: str, *, ecosystem: str = "", package: str = "") -> int | None:
    """-1, 0 or 1 as ``a`` is older, equal or newer than ``b``; ``None`` if unorderable.
    Remembered (pure): a plan compares the same fixes again for every filter and page, and
    univers' orders cost ~0.1 ms a pair."""
    a, b = a.strip(), b.strip()
    if a == b:
        return 0
    scheme = resolve(ecosystem, package, (a, b))
    if scheme is None:
        return None
    if scheme in SCHEMES:
        return _in_scheme(scheme, a, b)
    return _by_consensus(a, b)  # unknown or schemeless ecosystem (conan, hex, …)


def candidates(fix_version: str) -> list[str]:
    """Trivy lists several fixes as ``"1.2.5, 2.0.1"``: one per maintained branch."""
    return [v.strip() for v in fix_version.split(",") if v.strip()]


def lowest_fix(installed: str, fix_version: str, *, ecosystem: str = "",
               package: str = "") -> str | None:
    """The lowest listed fix newer than ``installed``; ``None`` if they cannot be ordered."""
    options = candidates(fix_version)
    if len(options) == 1:
        return options[0]
    scheme = resolve(ecosystem, package, [installed, *options])
    if scheme is None:
        return None
    newer: list[str] = []
    for option in options:
        order = compare(option, installed, ecosystem=scheme)
        if order is None:
            return None
        if order > 0:
            newer.append(option)
    return highest(newer, lowest=True, ecosystem=scheme) if newer else None


def highest(versions: Iterable[str], *, lowest: bool = False, ecosystem: str = "",
            package: str = "") -> str | None:
    """The highest (or lowest) of ``versions``; ``None`` if any pair cannot be ordered."""
    listed = list(versions)
    scheme = resolve(ecosystem, package, listed)
    if scheme is None:
        return None
    best: str | None = None
    for version in listed:
        if best is None:
            best = version
            continue
        order = compare(version, best, ecosystem=scheme)
        if order is None:
            return None
        if (order < 0) if lowest else (order > 0):
            best = version
    return best
