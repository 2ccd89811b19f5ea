"""Which findings an ``[[ignore]]`` rule or a Harbor CVE allowlist hides. Pure: ``now`` is given.

An ignored finding keeps its whole history; only alerts skip it. A rule stops applying on its
``expires`` date (UTC), an allowlist at its ``expires_at``; the findings they hid are open again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fnmatch import fnmatchcase

from daemon.config_types import IgnoreConfig
from daemon.model import CveAllowlist, FindingKey


def _any(patterns: Sequence[str], *values: str) -> bool:
    return any(fnmatchcase(v, p) for p in patterns for v in values)


def rule_applies(rule: IgnoreConfig, key: FindingKey, now: datetime) -> bool:
    """Whether ``rule`` hides ``key`` at ``now`` (expired on and after its ``expires`` date)."""
    if now.date() >= rule.expires:
        return False
    if rule.vulnerability and rule.vulnerability.upper() != key.vulnerability.upper():
        return False
    if rule.package and not fnmatchcase(key.package, rule.package):
        return False
    full = f"{key.project}/{key.repository}"
    return (
        _any(rule.registries, key.registry)
        and _any(rule.projects, key.project)
        and _any(rule.repositories, full, key.repository)
    )


def allowlist_applies(allow: CveAllowlist, key: FindingKey, now: datetime) -> bool:
    if allow.registry != key.registry or (allow.project and allow.project != key.project):
        return False
    if allow.expires_at is not None and now >= allow.expires_at:
        return False
    return key.vulnerability in allow.cve_ids


def ignore_reason(
    key: FindingKey,
    rules: Sequence[IgnoreConfig],
    allowlists: Sequence[CveAllowlist],
    now: datetime,
) -> str:
    """Why ``key`` is ignored at ``now``, or "" when nothing hides it."""
    for rule in rules:
        if rule_applies(rule, key, now):
            return f"{rule.reason} (ignored until {rule.expires.isoformat()})"
    for allow in allowlists:
        if allowlist_applies(allow, key, now):
            scope = f"project {allow.project}" if allow.project else "system"
            return f"Harbor CVE allowlist ({scope})"
    return ""
