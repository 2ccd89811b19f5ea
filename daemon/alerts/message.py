"""The one message model that every channel renders (``alerts/render.py``).

A message leads with remediation actions: (package, installed version) → the fix version that
resolves all of its vulnerabilities, with every vulnerability id and why it is there (``Why``:
its change and reason), the affected images and, where a fix exists, a hint when many images
share the vulnerable version (fix the base image). Then what has no fix yet, what was fixed,
what is overdue, and which scans went wrong.

Priority (the order of actions in each section, ``group.priority``): the worst severity first,
then the action touching the most images, then the most vulnerabilities, then by package and
version. Exploitation data (EPSS, KEV) will come before image counts when history has it.

First sight (DESIGN "What 'changed' means", rule 3): a repository scanned for the first time is
never listed CVE by CVE. History records one summary event per first-scanned artifact (kind
``new``, reason ``first_sight``, ``count`` findings, the highest severity), and a message shows
them as one ``first_seen`` section: one ``FirstSeen`` line per repository (findings, counts per
severity, the ``scanwatch findings`` command that lists them), for routes whose events include
``new`` and whose ``min_severity`` the highest severity reaches.

A registry's very first run sends nothing about first sights: when every change event of a
registry in a pass is a first-sight summary and together they cover every repository that
history holds findings for in that registry, those summaries are dropped before routing (the
``alerts_first_sight_quiet`` log line counts them). Such a run would otherwise announce the whole
registry; ``scanwatch findings`` shows it. Scan problems of that run are still sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from daemon.model import NO_EXPLOIT_INFO, ExploitInfo, FindingKey, Severity
from daemon.remedy import Vuln as Vuln  # one vulnerability of an action, shared with remedy


@dataclass(frozen=True, slots=True)
class Image:
    project: str
    repository: str
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    link: str = ""  # Harbor UI link to the artifact (or its project), "" if the URL is unknown
    page: str = ""  # scanwatch's page of the artifact ([daemon] public_url), "" if none

    @property
    def name(self) -> str:
        return f"{self.project}/{self.repository}"


@dataclass(frozen=True, slots=True)
class Why:
    """Why a vulnerability is in the message: its change and reason exactly as ``history``
    prints them (``new``/``advisory_published``, ``fix_available``/``fix_released``, …; a
    reminder is ``reminder``/``still_open``) and the few words Slack and email show."""

    vulnerability: str
    change: str
    reason: str
    words: str


@dataclass(frozen=True, slots=True)
class Action:
    """Upgrade ``package`` from ``installed_version`` to ``fix_version`` (or, when there is no
    fix, watch it). ``candidate_fixes`` lists the fixes when they could not be ordered."""

    package: str
    installed_version: str
    fix_version: str
    vulnerabilities: tuple[Vuln, ...]
    images: tuple[Image, ...]
    candidate_fixes: tuple[str, ...] = ()
    shared_images: int = 0  # > 0: that many images share the version; rebuild the base image
    reminder: bool = False  # every finding in it is a repeat_open_every reminder
    why: tuple[Why, ...] = ()  # one per vulnerability that has one
    # Lineage (daemon/lineage/advice.py): "base", "own", "unknown" or "" (no lineage known);
    # the base image; the newer base tag that fixes it; the own build step that added it.
    source: str = ""
    base_image: str = ""
    rebuild_on: str = ""
    step: str = ""
    exploit: tuple[tuple[str, ExploitInfo], ...] = ()  # KEV/EPSS of its vulnerabilities
    # (vulnerability, "VEX affected: <action statement>" / "VEX under_investigation")
    vex: tuple[tuple[str, str], ...] = ()

    def vex_of(self, vulnerability: str) -> str:
        return "; ".join(n for v, n in self.vex if v == vulnerability)

    def why_of(self, vulnerability: str) -> Why | None:
        return next((w for w in self.why if w.vulnerability == vulnerability), None)

    def exploit_of(self, vulnerability: str) -> ExploitInfo:
        return next((e for v, e in self.exploit if v == vulnerability), NO_EXPLOIT_INFO)

    @property
    def kev(self) -> bool:
        """Some vulnerability of it is in CISA's Known Exploited Vulnerabilities."""
        return any(e.kev for _, e in self.exploit)

    @property
    def epss(self) -> float | None:
        """The highest EPSS score of its vulnerabilities (None: none is scored)."""
        return max((e.epss for _, e in self.exploit if e.epss is not None), default=None)

    @property
    def epss_percentile(self) -> float | None:
        return max((e.epss_percentile for _, e in self.exploit
                    if e.epss_percentile is not None), default=None)

    @property
    def top_severity(self) -> Severity:
        return max((v.severity for v in self.vulnerabilities), default=Severity.UNKNOWN)

    def severity_counts(self) -> list[tuple[Severity, int]]:
        counts = Counter(v.severity for v in self.vulnerabilities)
        return sorted(counts.items(), key=lambda kv: -kv[0])


@dataclass(frozen=True, slots=True)
class Rebuild:
    """Rebuild the images built on ``base_image`` on ``rebuild_on``: it lacks these
    vulnerabilities (the actions of the same ``base_image``/``rebuild_on`` list them)."""

    base_image: str
    rebuild_on: str
    images: tuple[Image, ...]
    vulnerabilities: tuple[Vuln, ...]
    pushed_at: datetime | None = None

    def severity_counts(self) -> list[tuple[Severity, int]]:
        counts = Counter(v.severity for v in self.vulnerabilities)
        return sorted(counts.items(), key=lambda kv: -kv[0])


@dataclass(frozen=True, slots=True)
class FixedSummary:
    findings: int
    images: tuple[str, ...]
    reasons: tuple[tuple[str, int], ...]
    vulnerabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirstSeen:
    """A repository seen for the first time: its findings summarised, never listed."""

    project: str
    repository: str
    findings: int
    highest: Severity
    severity_counts: tuple[tuple[Severity, int], ...] = ()  # highest first; () if unknown
    link: str = ""

    @property
    def name(self) -> str:
        return f"{self.project}/{self.repository}"


@dataclass(frozen=True, slots=True)
class Overdue:
    vulnerability: str
    package: str
    severity: Severity
    image: Image
    open_days: int
    deadline_days: int
    escalation: bool = False
    kev_due: date | None = None  # the deadline is CISA KEV's due date ([sla] kev_due_date)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # "scan_failed" or "scanner_unavailable"
    image: Image | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    images_checked: int
    scanner_db_updated_at: datetime | None
    behind_db: int | None = None  # images whose report is older than the scanner's DB
    images: int = 0  # of how many (scannable, with a report); None above: not measured
    oldest_behind: datetime | None = None  # the oldest of those reports


@dataclass(frozen=True, slots=True)
class Message:
    """One message for one receiver about one registry."""

    id: str
    receiver: str
    registry: str
    routes: tuple[str, ...]
    kind: str  # "immediate", "digest", "heartbeat" or "test"
    context: str  # the run's schedule name, "digest", …
    created_at: datetime
    fix_now: tuple[Action, ...] = ()
    no_fix: tuple[Action, ...] = ()
    fixed: FixedSummary | None = None
    overdue: tuple[Overdue, ...] = ()
    problems: tuple[Problem, ...] = ()
    notices: tuple[str, ...] = ()  # e.g. ignores about to expire
    heartbeat: Heartbeat | None = None
    first_seen: tuple[FirstSeen, ...] = ()
    rebuilds: tuple[Rebuild, ...] = ()  # lead the message: they group fix_now actions
    # (finding, change kind, changed value) reported: the notification log's entries once sent
    findings: tuple[tuple[FindingKey, str, str], ...] = field(default=())
    public_url: str = ""  # [daemon] public_url: "Details" link to scanwatch's pages
    advisory_url: str = ""  # [daemon] advisory_url: template of each id's advisory link

    @property
    def empty(self) -> bool:
        return not (self.fix_now or self.no_fix or self.fixed or self.overdue or self.problems
                    or self.heartbeat or self.first_seen)

    def severity_counts(self, sections: str = "all") -> list[tuple[Severity, int]]:
        """Vulnerabilities per severity, highest first, across every action (``all``), the
        fix-now actions (``fix_now``) or those without a fix (``no_fix``)."""
        actions = {"all": (*self.fix_now, *self.no_fix), "fix_now": self.fix_now,
                   "no_fix": self.no_fix}[sections]
        counts: Counter[Severity] = Counter()
        for action in actions:
            counts.update(v.severity for v in action.vulnerabilities)
        return sorted(counts.items(), key=lambda kv: -kv[0])
