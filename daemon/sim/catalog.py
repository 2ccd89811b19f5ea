"""Realistic package names and versions for the seeded vulnerability generator.

Each entry is (name, first version); later versions are made by bumping the last number, the way
distributions and language ecosystems publish fixes (``1.1.1n-0+deb11u3`` → ``…deb11u4``).
"""

from __future__ import annotations

import re

DEBIAN: tuple[tuple[str, str], ...] = (
    ("openssl", "1.1.1n-0+deb11u3"), ("libssl1.1", "1.1.1n-0+deb11u3"),
    ("libc6", "2.31-13+deb11u5"), ("libc-bin", "2.31-13+deb11u5"),
    ("zlib1g", "1:1.2.11.dfsg-2+deb11u1"),
    ("curl", "7.74.0-1.3+deb11u7"), ("libcurl4", "7.74.0-1.3+deb11u7"),
    ("libxml2", "2.9.10+dfsg-6.7+deb11u3"), ("tar", "1.34+dfsg-1"), ("bash", "5.1-2+deb11u1"),
    ("gzip", "1.10-4+deb11u1"), ("libsystemd0", "247.3-7+deb11u1"), ("libudev1", "247.3-7+deb11u1"),
    ("perl-base", "5.32.1-4+deb11u2"), ("libgnutls30", "3.7.1-5+deb11u2"),
    ("e2fsprogs", "1.46.2-2"), ("libncursesw6", "6.2+20201114-2+deb11u1"),
    ("libsqlite3-0", "3.34.1-3"), ("libkrb5-3", "1.18.3-6+deb11u3"),
    ("libtasn1-6", "4.16.0-2+deb11u1"),
    ("libexpat1", "2.2.10-2+deb11u5"), ("libldap-2.4-2", "2.4.57+dfsg-3+deb11u1"),
    ("libpcre2-8-0", "10.36-2+deb11u1"), ("util-linux", "2.36.1-8+deb11u1"), ("login", "1:4.8.1-1"),
    ("passwd", "1:4.8.1-1"), ("dpkg", "1.20.12"), ("apt", "2.2.4"), ("libgcrypt20", "1.8.7-6"),
    ("libtiff5", "4.2.0-1+deb11u4"),
)
ALPINE: tuple[tuple[str, str], ...] = (
    ("musl", "1.2.3-r4"), ("busybox", "1.35.0-r29"), ("libcrypto3", "3.0.8-r0"),
    ("libssl3", "3.0.8-r0"),
    ("zlib", "1.2.13-r0"), ("apk-tools", "2.12.10-r1"), ("ssl_client", "1.35.0-r29"),
    ("libcurl", "7.87.0-r1"), ("expat", "2.5.0-r0"), ("ncurses-libs", "6.3_p20221119-r0"),
    ("libxml2", "2.10.3-r1"), ("libtasn1", "4.19.0-r0"), ("openssl", "3.0.8-r0"),
    ("krb5-libs", "1.20.1-r0"),
)
NPM: tuple[tuple[str, str], ...] = (
    ("lodash", "4.17.19"), ("minimist", "1.2.5"), ("express", "4.17.1"), ("axios", "0.21.1"),
    ("jsonwebtoken", "8.5.1"), ("semver", "7.3.5"), ("ws", "7.4.5"), ("qs", "6.7.0"),
    ("follow-redirects", "1.14.7"), ("tar", "6.1.0"), ("glob-parent", "5.1.1"),
    ("node-fetch", "2.6.1"),
    ("json5", "2.2.1"), ("word-wrap", "1.2.3"), ("tough-cookie", "4.0.0"),
)
PYPI: tuple[tuple[str, str], ...] = (
    ("requests", "2.25.1"), ("urllib3", "1.26.4"), ("Jinja2", "2.11.2"), ("Werkzeug", "2.0.1"),
    ("Django", "3.2.4"), ("Flask", "1.1.2"), ("cryptography", "3.3.2"), ("PyYAML", "5.3.1"),
    ("setuptools", "57.0.0"), ("certifi", "2020.12.5"), ("idna", "2.10"), ("Pillow", "8.2.0"),
)
GO: tuple[tuple[str, str], ...] = (
    ("golang.org/x/net", "v0.7.0"), ("golang.org/x/crypto", "v0.6.0"),
    ("golang.org/x/text", "v0.3.7"),
    ("google.golang.org/grpc", "v1.53.0"), ("github.com/golang-jwt/jwt/v4", "v4.4.1"),
    ("stdlib", "v1.20.4"), ("github.com/docker/docker", "v20.10.21+incompatible"),
    ("google.golang.org/protobuf", "v1.28.0"), ("github.com/opencontainers/runc", "v1.1.4"),
)
OS_FAMILIES = {"debian": DEBIAN, "alpine": ALPINE}
LANGUAGES = {"npm": NPM, "pypi": PYPI, "gomod": GO}

WORDS = (
    "buffer overflow", "use-after-free", "integer overflow", "NULL pointer dereference",
    "out-of-bounds read", "out-of-bounds write", "denial of service via crafted input",
    "improper certificate validation", "path traversal", "prototype pollution",
    "regular expression denial of service", "HTTP request smuggling", "information disclosure",
)
CWES = ("CWE-20", "CWE-125", "CWE-787", "CWE-416", "CWE-476", "CWE-190", "CWE-22", "CWE-295",
        "CWE-400", "CWE-1321", "CWE-444", "CWE-200", "CWE-770")
PROJECT_NAMES = ("library", "payments", "platform", "data", "web", "ml", "infra", "mobile",
                 "search",
                 "identity", "billing", "analytics")
NESTED_REPOS = ("team/app", "backend/api", "frontend/web", "tools/ci/runner", "ml/train",
                "ops/exporter")
PLAIN_REPOS = ("nginx", "redis", "postgres", "worker", "gateway", "auth", "cron", "proxy", "ui",
               "scheduler", "migrations", "batch")
CHART_REPOS = ("charts/app", "helm/stack")

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def bump(version: str, steps: int = 1) -> str:
    """The version ``steps`` releases after ``version`` (its last number increased)."""
    match = _LAST_NUMBER.search(version)
    if match is None:
        return f"{version}.{steps}"
    start, end = match.span(1)
    return f"{version[:start]}{int(match.group(1)) + steps}{version[end:]}"
