"""Which versioning scheme a package belongs to: from the report where it says so, else inferred.

An ecosystem is named by its Package URL type (``deb``, ``apk``, ``rpm``, ``pypi``, ``npm``,
``cargo``, ``golang``, ``maven``, ``gem``, ``nuget``, ``composer``, …), the vocabulary Trivy's
``PkgIdentifier.PURL`` already uses. Pure: no I/O.

Where a report says it (Trivy: the PURL of each package, else its Result's ``Type``), that is the
ecosystem. Harbor's own report says nothing usable: harbor-scanner-trivy sends a ``purl`` per
item, but Harbor stores the item without it (``package_type`` is always "Unknown") and returns it
without it, so for reports read from Harbor ``infer`` works from the package name and the form
of the versions, and says "" where neither tells.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Trivy's Result.Type (pkg/fanal/types/const.go) → the ecosystem whose versions it holds. Only
# types whose scheme is certain are listed; the rest come from the PURL or stay unknown.
_TRIVY_TYPES: dict[str, str] = {
    **dict.fromkeys(("debian", "ubuntu"), "deb"),
    **dict.fromkeys(("alpine", "wolfi", "chainguard"), "apk"),
    **dict.fromkeys((
        "alma", "amazon", "azurelinux", "cbl-mariner", "centos", "centos-stream", "fedora",
        "opensuse", "opensuse-leap", "opensuse-tumbleweed", "opensuse.leap",
        "opensuse.tumbleweed", "oracle", "photon", "redhat", "rocky", "sles", "slem",
    ), "rpm"),
    **dict.fromkeys(("npm", "yarn", "pnpm", "bun", "node-pkg", "javascript"), "npm"),
    **dict.fromkeys(("pip", "pipenv", "poetry", "uv", "pylock", "python-pkg"), "pypi"),
    **dict.fromkeys(("cargo", "rustbinary", "rust-binary"), "cargo"),
    **dict.fromkeys(("gomod", "gobinary"), "golang"),
    **dict.fromkeys(("jar", "pom", "gradle", "sbt"), "maven"),
    **dict.fromkeys(("bundler", "gemspec"), "gem"),
    **dict.fromkeys(("nuget", "dotnet-core", "packages-props"), "nuget"),
    **dict.fromkeys(("composer", "composer-vendor"), "composer"),
}

_PURL_TYPE = re.compile(r"^pkg:/*([A-Za-z][A-Za-z0-9.+-]*)/")

# Marks in a version string that only one scheme produces. Each is checked on every version of
# a comparison; two different marks mean the versions come from different schemes.
_FORM_MARKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Debian/Ubuntu: security updates (+deb12u3, ~deb12u1), Ubuntu revisions, backports,
    # binary NMUs (+b2), repacked upstream sources (+dfsg).
    ("deb", re.compile(r"[+~]deb\d|ubuntu\d|[+~]bpo\d|\+b\d+$|[.+~]dfsg")),
    # Alpine: every package version ends in -rN (apk's package release).
    ("apk", re.compile(r"^\d[0-9a-z._]*-r\d+$")),
    # RPM distributions' release tags: el7, el8_10, amzn2, fc39, ph5 (Photon), cm2/azl3
    # (Mariner/Azure Linux), mga9, module+el8.
    ("rpm", re.compile(
        r"\.(?:el\d+|amzn\d|fc\d+|ph\d|cm\d|azl\d|mga\d)(?:[._+]|$)|\.module[+_]el")),
    # Go: pseudo-versions (a 14-digit UTC time and a 12-hex-digit commit) and +incompatible.
    ("golang", re.compile(r"\d{14}-[0-9a-f]{12}(?:\+incompatible)?$|\+incompatible$")),
    # PEP 440: post and dev releases, and pre-releases written without a separator.
    ("pypi", re.compile(r"\d\.(?:post|dev)\d+$|^\d+(?:\.\d+)*(?:a|b|rc)\d+$")),
)

# Package names that only one ecosystem uses.
_GO_MODULE = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+/")  # github.com/…, golang.org/x/…
_COMPOSER = re.compile(r"^[a-z0-9_.-]+/[a-z0-9_.-]+$")  # vendor/package
_MAVEN = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$")  # groupId:artifactId (Trivy's form)


def from_purl(purl: str) -> str:
    """The ecosystem of a Package URL (``pkg:deb/debian/curl@…`` → ``deb``); "" if not one."""
    match = _PURL_TYPE.match(purl.strip())
    return match.group(1).lower() if match else ""


def from_trivy(result_type: str, purl: str = "") -> str:
    """The ecosystem of a Trivy package: its PURL's type, else its Result's ``Type``."""
    return from_purl(purl) or _TRIVY_TYPES.get(result_type.strip().lower(), "")


def from_name(package: str) -> str:
    """The ecosystem a package name can only belong to, or ""."""
    if package == "stdlib":  # Trivy's name for the Go standard library in a Go binary
        return "golang"
    if package.startswith("@") and "/" in package:  # @scope/name
        return "npm"
    if _MAVEN.match(package):
        return "maven"
    if _GO_MODULE.match(package):
        return "golang"
    if _COMPOSER.match(package):
        return "composer"
    return ""


def marks(version: str) -> set[str]:
    """The ecosystems whose marks ``version`` carries (usually none or one)."""
    return {name for name, pattern in _FORM_MARKS if pattern.search(version)}


def infer(package: str, versions: Iterable[str]) -> str | None:
    """The ecosystem that ``package`` and all of ``versions`` (compared together) belong to.

    The package name decides where it can (a Go module path, a Maven coordinate); else the
    versions' marks, which must agree. "" when nothing tells (plain ``1.2.3``-style versions);
    ``None`` when the marks disagree: such versions come from different schemes and must never
    be compared.
    """
    by_name = from_name(package)
    if by_name:
        return by_name
    found: set[str] = set()
    for version in versions:
        found |= marks(version)
    if len(found) > 1:
        return None
    return next(iter(found), "")
