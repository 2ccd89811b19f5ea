"""Silences: ignore rules and Harbor allowlists applied to alert items (pure).

An ignored item is recorded in history as usual but is not alerted. An ``[[ignore]]`` rule is
active through its ``expires`` date (inclusive, in UTC); a week before that, ``expiry_warnings``
says which images will alert again. Harbor's CVE allowlists (system and per project) count as
ignores for registries with ``use_harbor_allowlist = true``; the caller reads them from Harbor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase

from daemon.alerts.events import AlertItem, OpenFinding, finding_of
from daemon.config_types import IgnoreConfig
from daemon.model import ChangeEvent, FindingKey

# (registry, project) -> allowlisted CVE ids; project "" is the registry's system allowlist.
Allowlists = Mapping[tuple[str, str], frozenset[str]]


@dataclass(frozen=True, slots=True)
class ExpiryWarning:
    """Ignores expiring soon, and the open findings they will stop hiding."""

    rules: tuple[IgnoreConfig, ...]
    findings: tuple[FindingKey, ...]
    images: tuple[str, ...]  # "project/repository" of the images that will alert again
    within: timedelta

    @property
    def text(self) -> str:
        n, m = len(self.rules), len(self.images)
        days = self.within.days
        head = f"{n} ignore{'s' if n != 1 else ''} expire{'' if n != 1 else 's'} in {days} days"
        if not m:
            return f"{head}: no open finding depends on {'them' if n != 1 else 'it'}"
        return f"{head}: {'these' if m != 1 else 'this'} {m} image{'s' if m != 1 else ''} " \
               f"will alert again"


def _glob(globs: Sequence[str], value: str) -> bool:
    return any(fnmatchcase(value, g) for g in globs)


def rule_matches(rule: IgnoreConfig, key: FindingKey) -> bool:
    """The rule covers the finding (its vulnerability and package may be globs; "" means any)."""
    if rule.vulnerability and not fnmatchcase(key.vulnerability.upper(),
                                              rule.vulnerability.upper()):
        return False
    if rule.package and not fnmatchcase(key.package, rule.package):
        return False
    full = f"{key.project}/{key.repository}"
    return (_glob(rule.registries, key.registry) and _glob(rule.projects, key.project)
            and (_glob(rule.repositories, full) or _glob(rule.repositories, key.repository)))


def active(rule: IgnoreConfig, now: datetime) -> bool:
    return _today(now) <= rule.expires


def _today(now: datetime) -> date:
    return now.date() if now.tzinfo is None else now.astimezone(UTC).date()


def is_ignored(
    key: FindingKey,
    ignores: Sequence[IgnoreConfig],
    now: datetime,
    allowlists: Allowlists | None = None,
) -> bool:
    """An active ignore rule or an allowlist covers the finding."""
    if any(active(rule, now) and rule_matches(rule, key) for rule in ignores):
        return True
    if allowlists:
        vuln = key.vulnerability
        for scope in ((key.registry, ""), (key.registry, key.project)):
            if vuln in allowlists.get(scope, frozenset()):
                return True
    return False


def apply_silences(
    items: Iterable[AlertItem],
    ignores: Sequence[IgnoreConfig],
    now: datetime,
    allowlists: Allowlists | None = None,
) -> tuple[list[AlertItem], list[AlertItem]]:
    """Split items into (to alert, silenced). Scan problems are never silenced.

    A change event that history already marked ``ignored`` stays silenced.
    """
    kept: list[AlertItem] = []
    silenced: list[AlertItem] = []
    for item in items:
        key = finding_of(item)
        hidden = key is not None and (
            (isinstance(item, ChangeEvent) and item.ignored)
            or is_ignored(key, ignores, now, allowlists)
        )
        (silenced if hidden else kept).append(item)
    return kept, silenced


def expiry_warnings(
    ignores: Sequence[IgnoreConfig],
    open_findings: Iterable[OpenFinding],
    now: datetime,
    within: timedelta = timedelta(days=7),
) -> ExpiryWarning | None:
    """Rules still active that expire within ``within``, and the open findings they hide.

    A finding counts only if no other rule (one that stays active) would keep hiding it.
    """
    today = _today(now)
    horizon = today + within
    expiring = tuple(r for r in ignores if today <= r.expires <= horizon)
    if not expiring:
        return None
    staying = [r for r in ignores if r.expires > horizon]
    findings: list[FindingKey] = []
    images: set[str] = set()
    for item in open_findings:
        key = item.finding
        if not any(rule_matches(r, key) for r in expiring):
            continue
        if any(rule_matches(r, key) for r in staying):
            continue
        findings.append(key)
        images.add(f"{key.project}/{key.repository}")
    return ExpiryWarning(expiring, tuple(findings), tuple(sorted(images)), within)
