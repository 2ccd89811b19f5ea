"""The one ignore evaluator: ``[[ignore]]`` rules, `scanwatch ignore` rules, Harbor CVE
allowlists and VEX statements. Pure: ``now`` is given.

History (the ``ignored`` mark of a finding), ``scanwatch findings`` and alerts all ask the same
``IgnoreRules`` value, built from the configuration in force, the rules added with
``scanwatch ignore add`` and the allowlists last read from Harbor (both kept in the database,
so an open, a ``--once`` or a reload changes nothing). The rules:

- **Expiry.** A rule is active through the whole of its ``expires`` day, in UTC; from the next
  day on it hides nothing. An allowlist hides until its ``expires_at`` moment (Harbor's own).
- **Matching.** ``vulnerability`` and ``package`` are globs (``CVE-2024-*``; the vulnerability
  in any case), "" means any; ``registries`` and ``projects`` are globs; ``repositories`` globs
  match ``project/repository`` or the repository name alone. An allowlist matches its registry,
  its project ("" for the system's) and the exact CVE ids it lists.
- **VEX.** A ``not_affected`` or ``fixed`` statement (``daemon/intel/vex.py``, resolved to
  registry and repository globs) hides the findings of its vulnerability in the repositories
  it names (its packages, where it lists any); its justification is the reason. Other statuses
  hide nothing: ``under_investigation`` and ``affected`` are notes (``vex_note``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase

from daemon.config_types import Config, IgnoreConfig
from daemon.intel.vex import VexRule
from daemon.model import CveAllowlist, FindingKey


def utc_day(now: datetime) -> date:
    """The UTC calendar day of ``now`` (a naive ``now`` is taken as UTC)."""
    return now.date() if now.tzinfo is None else now.astimezone(UTC).date()


def rule_active(rule: IgnoreConfig, now: datetime) -> bool:
    """Active through the whole ``expires`` day (UTC)."""
    return utc_day(now) <= rule.expires


def _any(patterns: Sequence[str], *values: str) -> bool:
    return any(fnmatchcase(v, p) for p in patterns for v in values)


def rule_matches(rule: IgnoreConfig, key: FindingKey) -> bool:
    """The rule covers the finding, whatever the date."""
    if rule.vulnerability and not fnmatchcase(key.vulnerability.upper(),
                                              rule.vulnerability.upper()):
        return False
    if rule.package and not fnmatchcase(key.package, rule.package):
        return False
    return (_any(rule.registries, key.registry) and _any(rule.projects, key.project)
            and _any(rule.repositories, f"{key.project}/{key.repository}", key.repository))


def allowlist_applies(allow: CveAllowlist, key: FindingKey, now: datetime) -> bool:
    if allow.registry != key.registry or (allow.project and allow.project != key.project):
        return False
    if allow.expires_at is not None and now >= allow.expires_at:
        return False
    return key.vulnerability in allow.cve_ids


def vex_matches(rule: VexRule, key: FindingKey) -> bool:
    """The statement names the finding's vulnerability, repository and (if any) package."""
    if not fnmatchcase(key.vulnerability.upper(), rule.vulnerability.upper()):
        return False
    if rule.packages and key.package not in rule.packages:
        return False
    where = f"{key.project}/{key.repository}"
    return any(fnmatchcase(key.registry, reg) and fnmatchcase(where, repo)
               for reg, repo in rule.scopes)


@dataclass(frozen=True, slots=True)
class StoredIgnore:
    """A rule added with `scanwatch ignore add`: the same fields as ``[[ignore]]``, with who
    added it and when (kept in the database, ``store/ignores.py``)."""

    id: int
    rule: IgnoreConfig
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """Config rules, rules added from the command line and Harbor allowlists, each with its
    source; the same answer everywhere."""

    rules: tuple[IgnoreConfig, ...] = ()
    allowlists: tuple[CveAllowlist, ...] = ()
    stored: tuple[StoredIgnore, ...] = ()
    vex: tuple[VexRule, ...] = ()

    @classmethod
    def from_config(cls, config: Config, allowlists: Iterable[CveAllowlist] = (),
                    stored: Iterable[StoredIgnore] = ()) -> IgnoreRules:
        """The configuration's rules, the stored allowlists of the registries that use them
        (``use_harbor_allowlist = true``; other registries' are left out) and the rules added
        with `scanwatch ignore add`."""
        using = {r.name for r in config.registries if r.use_harbor_allowlist}
        return cls(tuple(config.ignores), tuple(a for a in allowlists if a.registry in using),
                   tuple(stored))

    def __bool__(self) -> bool:
        return bool(self.rules or self.allowlists or self.stored or self.vex)

    def with_allowlists(self, registry: str, allowlists: Iterable[CveAllowlist]) -> IgnoreRules:
        """These rules with ``registry``'s allowlists replaced by a fresh read."""
        kept = tuple(a for a in self.allowlists if a.registry != registry)
        return IgnoreRules(self.rules, kept + tuple(allowlists), self.stored, self.vex)

    def with_vex(self, statements: Iterable[VexRule]) -> IgnoreRules:
        return IgnoreRules(self.rules, self.allowlists, self.stored, tuple(statements))

    def vex_note(self, key: FindingKey) -> str:
        """What a VEX statement that does not silence says of ``key`` ("" for none)."""
        for v in self.vex:
            if not v.silences and vex_matches(v, key):
                return f"VEX {v.status}" + (f": {v.text}" if v.text else "")
        return ""

    def reason(self, key: FindingKey, now: datetime) -> str:
        """Why ``key`` is ignored at ``now`` (its source, for history and findings), or ""."""
        for rule in self.rules:
            if rule_active(rule, now) and rule_matches(rule, key):
                return f"{rule.reason} (ignored until {rule.expires.isoformat()})"
        for added in self.stored:
            if rule_active(added.rule, now) and rule_matches(added.rule, key):
                return (f"{added.rule.reason} (ignore #{added.id} by {added.created_by}, "
                        f"until {added.rule.expires.isoformat()})")
        for allow in self.allowlists:
            if allowlist_applies(allow, key, now):
                scope = f"project {allow.project}" if allow.project else "system"
                return f"Harbor CVE allowlist ({scope})"
        for v in self.vex:
            if v.silences and vex_matches(v, key):
                return f"VEX {v.status}: {v.text or 'no justification given'} ({v.source})"
        return ""

    def ignored(self, key: FindingKey, now: datetime) -> bool:
        return bool(self.reason(key, now))

    def may_match(self, vulnerability: str, package: str) -> bool:
        """Whether some rule could ignore a finding of this vulnerability and package,
        wherever it is and whenever: False lets a caller count such findings without asking
        ``reason`` of each (``store/actions.py``)."""
        vuln = vulnerability.upper()
        for rule in (*self.rules, *(a.rule for a in self.stored)):
            if (not rule.vulnerability or fnmatchcase(vuln, rule.vulnerability.upper())) and (
                    not rule.package or fnmatchcase(package, rule.package)):
                return True
        if any(vulnerability in a.cve_ids for a in self.allowlists):
            return True
        return any(v.silences and fnmatchcase(vuln, v.vulnerability.upper())
                   and (not v.packages or package in v.packages) for v in self.vex)


NO_RULES = IgnoreRules()
