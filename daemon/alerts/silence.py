"""Silences: the ignore rules (``daemon/ignores.py``) applied to alert items (pure).

An ignored item is recorded in history as usual but is not alerted. A week before a rule
expires, ``expiry_warnings`` says which images will alert again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from daemon.alerts.events import AlertItem, Item, OpenFinding, finding_of
from daemon.config_types import IgnoreConfig
from daemon.ignores import IgnoreRules, rule_matches, utc_day
from daemon.model import FindingKey


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


T = TypeVar("T", bound=AlertItem | Item)


def apply_silences(
    items: Iterable[T], rules: IgnoreRules, now: datetime
) -> tuple[list[T], list[T]]:
    """Split items into (to alert, silenced) by the rules in force at ``now``. Scan problems
    are never silenced.

    The rules in force decide, not the ``ignored`` mark an event got when it was recorded: a
    rule added since silences at once, and a finding whose rule ended is announced by its own
    ``ignore_expired`` event.
    """
    kept: list[T] = []
    silenced: list[T] = []
    for item in items:
        key = finding_of(item)
        hidden = key is not None and rules.ignored(key, now)
        (silenced if hidden else kept).append(item)
    return kept, silenced


EXPIRY_HORIZON = timedelta(days=7)  # an ignore rule expiring this soon is announced


def expiry_warnings(
    rules: IgnoreRules,
    open_findings: Iterable[OpenFinding],
    now: datetime,
    within: timedelta = EXPIRY_HORIZON,
) -> ExpiryWarning | None:
    """Rules still active that expire within ``within``, and the open findings they hide.

    A finding counts only if no other rule (one that stays active) would keep hiding it.
    """
    today = utc_day(now)
    horizon = today + within
    expiring = tuple(r for r in rules.rules if today <= r.expires <= horizon)
    if not expiring:
        return None
    staying = [r for r in rules.rules if r.expires > horizon]
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
