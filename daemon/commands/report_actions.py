"""`scanwatch report show FILE --by action`: the remediation view of one report, offline.

One row per (package, installed version): the single fix version that resolves all of its
vulnerabilities (chosen by ``daemon/remedy.py``, as alerts choose it), or the candidates when
they cannot be ordered, its vulnerability ids and its highest severity, fixable first.

JSON (a list, one object per package version; later versions add fields, never rename them)::

    [{"package": "libidn2-0", "installed_version": "2.0.5-1",
      "fix_version": "2.0.5-1+deb10u1",        # null: no fix, or the fixes cannot be ordered
      "candidate_fix_versions": [],            # the fixes, when they cannot be ordered
      "ecosystem": "deb",                      # the report's, else inferred, else ""
      "vulnerabilities": [{"id": "CVE-2019-18224", "severity": "Critical",
                           "fix_version": "2.0.5-1+deb10u1"}]}]
"""

from __future__ import annotations

from typing import Any

from daemon.commands._common import print_json, print_table
from daemon.model import Report
from daemon.remedy import Entry, Remedy, Vuln, plan

_SHOWN_IDS = 3  # ids per row in the table; the rest are counted
_SHOWN_CANDIDATES = 3


def remedies(report: Report) -> list[Remedy[None]]:
    """The report's remediation actions, fixable first."""
    return plan(
        Entry(o.package, o.version, Vuln(o.id, o.severity, o.fix_version), o.ecosystem)
        for o in report.occurrences
    )


def action_json(r: Remedy[Any]) -> dict[str, Any]:
    return {
        "package": r.package,
        "installed_version": r.installed_version,
        "fix_version": r.fix_version or None,
        "candidate_fix_versions": list(r.candidate_fix_versions),
        "ecosystem": r.ecosystem,
        "vulnerabilities": [
            {"id": v.id, "severity": v.severity.label, "fix_version": v.fix_version or None}
            for v in r.vulnerabilities
        ],
    }


def _upgrade(r: Remedy[Any]) -> str:
    if r.fix_version:
        return r.fix_version
    if r.candidate_fix_versions:
        shown = ", ".join(r.candidate_fix_versions[:_SHOWN_CANDIDATES])
        more = len(r.candidate_fix_versions) - _SHOWN_CANDIDATES
        return f"one of {shown}" + (f" (+{more})" if more > 0 else "")
    return "(no fix yet)"


def _ids(r: Remedy[Any]) -> str:
    ids = [v.id for v in r.vulnerabilities]
    shown = ", ".join(ids[:_SHOWN_IDS])
    more = len(ids) - _SHOWN_IDS
    return shown + (f" (+{more} more)" if more > 0 else "")


def show_actions(name: str, report: Report, fmt: str) -> int:
    return print_actions(name, remedies(report), fmt)


def print_actions(name: str, actions: list[Remedy[Any]], fmt: str) -> int:
    """The actions as a table with a summary line (``name`` says of what), or as JSON."""
    if fmt == "json":
        print_json([action_json(r) for r in actions])
        return 0
    if not actions:
        print(f"{name}: no vulnerabilities, nothing to upgrade")
        return 0
    print_table(
        ("SEVERITY", "PACKAGE", "INSTALLED", "UPGRADE TO", "ECOSYSTEM", "VULNERABILITIES"),
        ((r.top_severity.label, r.package, r.installed_version, _upgrade(r), r.ecosystem,
          _ids(r)) for r in actions),
    )
    print()
    fixable = sum(1 for r in actions if r.fix_version)
    choose = sum(1 for r in actions if r.candidate_fix_versions)
    parts = [f"{fixable} with a fix"]
    if choose:
        parts.append(f"{choose} to choose: the fixes cannot be ordered")
    parts.append(f"{len(actions) - fixable - choose} without a fix yet")
    vulns = sum(len(r.vulnerabilities) for r in actions)
    print(f"{name}: {_count(len(actions), 'action')} for {_count(vulns, 'vulnerability')} "
          f"({', '.join(parts)})")
    return 0


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"
