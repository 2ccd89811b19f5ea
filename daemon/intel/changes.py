"""What a feed change means for the findings history already holds (DESIGN.md "Events gain
kinds": ``known_exploited``, ``exploit_likely``). Pure: the store gives the open findings.

- A CVE added to KEV that is open anywhere: one ``known_exploited``/``kev_added`` event per
  open finding (repository, CVE, package); alerts group them into one message per route.
- A CVE dropped from KEV: ``known_exploited``/``kev_removed``, recorded and shown once.
- An EPSS score that reaches the threshold (and was below it, or unscored): ``exploit_likely``.
A first copy of a feed is a baseline: it raises nothing (see ``kev.delta``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daemon.intel.kev import KevDelta
from daemon.model import ChangeKind, Reason, Severity


@dataclass(frozen=True, slots=True)
class OpenHit:
    """An open finding whose vulnerability a feed change names."""

    finding_id: int
    repository_id: int
    vulnerability: str
    package: str
    severity: Severity
    fix_version: str
    installed_versions: str
    ignored: bool


@dataclass(frozen=True, slots=True)
class IntelEvent:
    kind: ChangeKind
    reason: Reason
    hit: OpenHit
    digests: tuple[str, ...] = ()
    detail: str = ""  # e.g. the KEV version or the EPSS score, kept in previous_version




def kev_events(change: KevDelta, hits: Sequence[OpenHit], version: str) -> list[IntelEvent]:
    added = {e.cve for e in change.added}
    removed = {e.cve for e in change.removed}
    out = []
    for hit in hits:
        if hit.vulnerability in added:
            out.append(IntelEvent(ChangeKind.KNOWN_EXPLOITED, Reason.KEV_ADDED, hit,
                                  detail=f"KEV {version}"))
        elif hit.vulnerability in removed:
            out.append(IntelEvent(ChangeKind.KNOWN_EXPLOITED, Reason.KEV_REMOVED, hit,
                                  detail=f"KEV {version}"))
    return out


def epss_events(crossed: Sequence[str], hits: Sequence[OpenHit], score_date: str
                ) -> list[IntelEvent]:
    wanted = set(crossed)
    return [IntelEvent(ChangeKind.EXPLOIT_LIKELY, Reason.EPSS_CROSSED, h,
                       detail=f"EPSS {score_date}") for h in hits if h.vulnerability in wanted]


def with_digests(event: IntelEvent, digests: tuple[str, ...]) -> IntelEvent:
    return IntelEvent(event.kind, event.reason, event.hit, digests, event.detail)
