"""`scanwatch report show FILE --by action`: the remediation view of one report, offline.

One row per (package, installed version): the single fix version that resolves all of its
vulnerabilities (chosen by ``daemon/remedy.py``, as alerts choose it), or the candidates when
they cannot be ordered, its vulnerability ids and its highest severity, fixable first.

JSON (a list, one object per package version; later versions add fields, never rename them)::

    [{"package": "libidn2-0", "installed_version": "2.0.5-1",
      "fix_version": "2.0.5-1+deb10u1",        # null: no fix, or the fixes cannot be ordered
      "candidate_fix_versions": [],            # the fixes, when they cannot be ordered
      "ecosystem": "deb",                      # the report's, else inferred, else ""
      "kev": false,                            # a vulnerability of it is in CISA KEV
      "kev_date_added": null, "kev_due_date": null,   # of its KEV entry due first
      "epss": 0.0034, "epss_percentile": 0.56, # the highest of its vulnerabilities, or null
      "vulnerabilities": [{"id": "CVE-2019-18224", "severity": "Critical",
                           "fix_version": "2.0.5-1+deb10u1",
                           "kev": null,        # or {name, required_action, date_added,
                                               #     due_date, ransomware}
                           "epss": 0.0034, "epss_percentile": 0.56}]}]

With KEV or EPSS data (the feeds in force for ``findings --by action``, ``--kev``/``--epss``
files for ``report show``), the rows come known exploited first (``remedy.by_exploit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon.commands._common import print_json, print_table
from daemon.lineage.advice import Source
from daemon.model import NO_EXPLOIT_INFO, ExploitInfo, Report
from daemon.remedy import Entry, Remedy, Vuln, by_exploit, exploit_of, plan

_SHOWN_IDS = 3  # ids per row in the table; the rest are counted
_SHOWN_CANDIDATES = 3


def remedies(report: Report, sources: Mapping[tuple[str, str, str], Source] | None = None
             ) -> list[Remedy[None]]:
    """The report's remediation actions, fixable first; ``sources`` (from a Trivy file's
    layers, ``daemon/lineage/trivy.py``) say where each vulnerability comes from."""
    found = sources or {}
    none = Source("")
    return plan(
        Entry(o.package, o.version, Vuln(o.id, o.severity, o.fix_version), o.ecosystem,
              source=(s := found.get((o.id, o.package, o.version), none)).kind,
              base_image=s.base_image, step=s.step)
        for o in report.occurrences
    )


def action_json(r: Remedy[Any], exploit: Mapping[str, ExploitInfo] | None = None
                ) -> dict[str, Any]:
    found = exploit or {}
    e = exploit_of(r, found)
    return {
        "package": r.package,
        "installed_version": r.installed_version,
        "fix_version": r.fix_version or None,
        "candidate_fix_versions": list(r.candidate_fix_versions),
        "ecosystem": r.ecosystem,
        "vulnerabilities": [_vuln_json(v, found.get(v.id, NO_EXPLOIT_INFO))
                            for v in r.vulnerabilities],
        # lineage (daemon/lineage): where the package comes from; null where unknown
        "source": r.source or None,
        "base_image": r.base_image or None,
        "rebuild_on": r.rebuild_on or None,
        "build_step": r.step or None,
        # intel (daemon/intel): CISA KEV and FIRST EPSS; false/null without their data
        "kev": e.kev,
        "kev_date_added": e.date_added.isoformat() if e.date_added else None,
        "kev_due_date": e.due_date.isoformat() if e.due_date else None,
        "epss": e.epss,
        "epss_percentile": e.epss_percentile,
    }


def _vuln_json(v: Vuln, e: ExploitInfo) -> dict[str, Any]:
    return {"id": v.id, "severity": v.severity.label, "fix_version": v.fix_version or None,
            "kev": e.kev_fields(), "epss": e.epss, "epss_percentile": e.epss_percentile}


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


def show_actions(name: str, report: Report, fmt: str,
                 sources: Mapping[tuple[str, str, str], Source] | None = None,
                 exploit: Mapping[str, ExploitInfo] | None = None) -> int:
    return print_actions(name, remedies(report, sources), fmt, exploit)


def print_actions(name: str, actions: list[Remedy[Any]], fmt: str,
                  exploit: Mapping[str, ExploitInfo] | None = None,
                  reach: Any = None) -> int:
    """The actions as a table with a summary line (``name`` says of what), or as JSON;
    with ``exploit`` (KEV/EPSS by CVE), known exploited first (``remedy.by_exploit``, with
    ``reach`` counting each action's images)."""
    if exploit:
        actions = by_exploit(actions, exploit, reach) if reach else by_exploit(actions, exploit)
    if fmt == "json":
        print_json([action_json(r, exploit) for r in actions])
        return 0
    if not actions:
        print(f"{name}: no vulnerabilities, nothing to upgrade")
        return 0
    lineage = any(r.source in ("base", "own") for r in actions)  # where each is from
    heads = ("SEVERITY", "PACKAGE", "INSTALLED", "UPGRADE TO", "ECOSYSTEM",
             *(("SOURCE",) if lineage else ()), *(("EXPLOITED",) if exploit else ()),
             "VULNERABILITIES")
    print_table(heads, ((r.top_severity.label, r.package, r.installed_version, _upgrade(r),
                         r.ecosystem, *((_source(r),) if lineage else ()),
                         *((_exploited(r, exploit),) if exploit else ()), _ids(r))
                        for r in actions))
    print()
    for target, base, n in _rebuilds(actions):
        print(f"Rebuild on {target} (images on {base}): fixes {_count(n, 'vulnerability')}")
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


def _exploited(r: Remedy[Any], exploit: Mapping[str, ExploitInfo]) -> str:
    e = exploit_of(r, exploit)
    parts = [f"KEV (due {e.due_date.isoformat()})" if e.kev and e.due_date else
             "KEV" if e.kev else "", f"EPSS {e.epss:.2f}" if e.epss is not None else ""]
    return ", ".join(p for p in parts if p) or "-"


STEP_WIDTH = 48  # a build step in the table; JSON has it whole


def _source(r: Remedy[Any]) -> str:
    short = r.step if len(r.step) <= STEP_WIDTH else r.step[:STEP_WIDTH - 1] + "…"
    step = f" ({short})" if r.step else ""
    if r.source == "base":
        return f"base {r.base_image}" + (f" → rebuild on {r.rebuild_on}" if r.rebuild_on
                                         else "") + step
    if r.source == "own":
        return f"own layers{step}"
    return (r.base_image or r.source) + step


def _rebuilds(actions: list[Remedy[Any]]) -> list[tuple[str, str, int]]:
    """(newer base, old base, vulnerabilities it fixes) over the actions, most first."""
    counts: dict[tuple[str, str], set[str]] = {}
    for r in actions:
        if r.source == "base" and r.rebuild_on:
            counts.setdefault((r.rebuild_on, r.base_image), set()).update(
                v.id for v in r.vulnerabilities)
    return sorted(((t, b, len(ids)) for (t, b), ids in counts.items()), key=lambda x: -x[2])


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"
