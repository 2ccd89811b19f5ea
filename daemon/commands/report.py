"""`scanwatch report show|diff`: read report files offline, with the daemon's own parser and diff.

No configuration and no registry are needed. Standard library only at module level.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from daemon.commands._common import add_format, print_json, print_table, safe_cell, table_width

if TYPE_CHECKING:
    from collections.abc import Sequence

    from daemon.model import Change, Occurrence

FORMATS_HELP = (
    "FILE is a Harbor vulnerabilities addition (keyed by either report mime type, or the bare "
    "report object) or Trivy's own JSON (`trivy image --format json`, SchemaVersion 2); the "
    "format is recognised from the content, whatever the file is called."
)

DIFF_HELP = (
    "Compares the two reports occurrence by occurrence, on the exact key (vulnerability id, "
    "package, installed version), as two files carry no digest or tag history: a package "
    "upgraded from 1.0 to 1.1 that still has the CVE shows as fixed at 1.0 and new at 1.1. "
    "(The daemon itself, comparing the scans of one repository, treats that as the same open "
    "finding.) Differences are the output, not an error: the exit status is 0 whenever both "
    "files were read, and 2 with a one-line message when one cannot be."
)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser(
        "report",
        parents=[common],
        help="show or compare vulnerability report files (Harbor or Trivy JSON), offline",
        description="Read vulnerability report files offline, normalised as the daemon stores "
        "them. " + FORMATS_HELP,
    )
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(title="report commands", metavar="COMMAND")

    show = sub.add_parser(
        "show",
        parents=[common],
        help="list a report's vulnerabilities, most severe first",
        description="List a report's vulnerabilities after normalisation (duplicates "
        "collapsed, Harbor's quirks smoothed), most severe first, with a one-line summary. "
        + FORMATS_HELP,
    )
    show.add_argument("file", metavar="FILE", help="the report file")
    show.add_argument(
        "--by",
        choices=("vulnerability", "action"),
        default="vulnerability",
        help="one row per vulnerability (default), or per remediation action: each package "
        "version with the one fix version that resolves all of its vulnerabilities (or the "
        "candidates, when they cannot be ordered), its vulnerability ids and the highest "
        "severity, fixable first",
    )
    show.add_argument(
        "--base", metavar="BASE_FILE",
        help="with --by action and a Trivy JSON FILE: the base image's Trivy JSON report; the "
        "layers both share are the base's, so each action says whether it comes from the base "
        "or from the image's own layers (each with its layer and build step, which a Trivy "
        "report names even without --base)")
    show.add_argument(
        "--kev", metavar="KEV_FILE",
        help="with --by action: a CISA KEV catalog (known_exploited_vulnerabilities.json); "
        "actions whose CVEs it lists come first and carry its entry (date added, due date)")
    show.add_argument(
        "--epss", metavar="EPSS_FILE",
        help="with --by action: a FIRST EPSS file (epss_scores-YYYY-MM-DD.csv.gz, or .csv); "
        "actions carry their CVEs' highest score and rank by it after KEV")
    add_format(show)
    show.set_defaults(handler=run_show)

    diff = sub.add_parser(
        "diff",
        parents=[common],
        help="what changed from one report file to another",
        description="Show what is new, fixed, newly fixable or rescored in NEW compared with "
        "OLD. " + DIFF_HELP + " " + FORMATS_HELP,
    )
    diff.add_argument("old", metavar="OLD", help="the earlier report file")
    diff.add_argument("new", metavar="NEW", help="the later report file")
    add_format(diff)
    diff.set_defaults(handler=run_diff)


def occurrence_json(occ: Occurrence) -> dict[str, Any]:
    return {
        "id": occ.id,
        "package": occ.package,
        "version": occ.version,
        "fix_version": occ.fix_version,
        "severity": occ.severity.label,
        "status": occ.status,
        "cvss_v3": occ.cvss_v3,
        "cvss_vector": occ.cvss_vector or None,
        "cwe_ids": list(occ.cwe_ids),
        "links": list(occ.links),
        "artifact_digests": list(occ.artifact_digests),
        "description": occ.description,
    }


def _by_severity(occurrences: Sequence[Occurrence]) -> list[Occurrence]:
    return sorted(occurrences, key=lambda o: (-o.severity, o.key))


def _cvss(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _counts(occurrences: Sequence[Occurrence]) -> str:
    from daemon.model import Severity

    parts = []
    for sev in sorted(Severity, reverse=True):
        n = sum(1 for o in occurrences if o.severity is sev)
        if n:
            parts.append(f"{n} {sev.label}")
    return ", ".join(parts)


def run_show(args: argparse.Namespace) -> int:
    from daemon.harbor.reports import load_report_file

    report = load_report_file(args.file)
    if args.by == "action":
        from daemon.commands.report_actions import show_actions
        from daemon.lineage import trivy

        base = None
        if args.base:
            load_report_file(args.base)  # the same checks and one-line errors
            base = _json(args.base)
        return show_actions(args.file, report, args.format,
                            trivy.sources(_json(args.file), base),
                            _exploit(args, {o.id for o in report.occurrences}))
    occurrences = report.occurrences
    if args.format == "json":
        print_json([occurrence_json(o) for o in occurrences])
        return 0
    if occurrences:
        print_table(
            ("SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED IN", "STATUS", "CVSS3"),
            (
                (
                    o.severity.label,
                    o.id,
                    o.package,
                    o.version,
                    o.fix_version,
                    o.status,
                    _cvss(o.cvss_v3),
                )
                for o in _by_severity(occurrences)
            ),
            width=table_width(),
        )
        print()
    n = len(occurrences)
    fixable = sum(1 for o in occurrences if o.fix_version)
    scanner = " ".join(x for x in (report.scanner_name, report.scanner_version) if x)
    detail = f" ({_counts(occurrences)}), {fixable} with a fix" if n else ""
    noun = "vulnerability" if n == 1 else "vulnerabilities"
    print(safe_cell(f"{args.file}: {n} {noun}{detail}"
                    + (f"; scanner {scanner}" if scanner else "")))
    return 0


_SECTIONS = ("new", "fix_available", "severity_changed", "fixed")


def run_diff(args: argparse.Namespace) -> int:
    from daemon.diff import diff_reports, unchanged_count
    from daemon.harbor.reports import load_report_file

    old = load_report_file(args.old)
    new = load_report_file(args.new)
    changes = diff_reports(old.occurrences, new.occurrences, same_digest=False, exact_keys=True)
    unchanged = unchanged_count(old.occurrences, new.occurrences, changes)
    sections: dict[str, list[Change]] = {name: [] for name in _SECTIONS}
    for change in changes:
        sections[change.kind.value].append(change)
    if args.format == "json":
        out: dict[str, Any] = {
            "new": [occurrence_json(c.occurrence) for c in sections["new"]],
            "fixed": [occurrence_json(c.occurrence) for c in sections["fixed"]],
            "fix_available": [occurrence_json(c.occurrence) for c in sections["fix_available"]],
            "severity_changed": [
                {
                    **occurrence_json(c.occurrence),
                    "from": c.previous.severity.label if c.previous else None,
                    "to": c.occurrence.severity.label,
                    "direction": c.direction,
                }
                for c in sections["severity_changed"]
            ],
            "unchanged": unchanged,
        }
        print_json(out)
        return 0
    rows = []
    for name in _SECTIONS:
        for c in sorted(sections[name], key=lambda c: (-c.occurrence.severity, c.occurrence.key)):
            occ = c.occurrence
            severity = occ.severity.label
            if name == "severity_changed" and c.previous is not None:
                severity = f"{c.previous.severity.label} → {severity}"
            rows.append((name, severity, occ.id, occ.package, occ.version, occ.fix_version))
    if rows:
        print_table(("CHANGE", "SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED IN"), rows,
                    width=table_width())
        print()
        summary = ", ".join(f"{len(sections[name])} {name.replace('_', ' ')}" for name in _SECTIONS)
        print(f"{summary}; {unchanged} unchanged")
    else:
        print(f"no differences; {unchanged} unchanged")
    return 0


def _exploit(args: argparse.Namespace, cves: set[str]) -> Any:
    """What ``--kev``/``--epss`` say of ``cves`` (``ExploitInfo`` by CVE), or None."""
    if not (args.kev or args.epss):
        return None
    from pathlib import Path

    from daemon.errors import UsageError
    from daemon.intel import epss, kev

    def read(path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror}") from None

    catalog = kev.parse(read(args.kev), args.kev) if args.kev else None
    scores = epss.parse(read(args.epss), args.epss) if args.epss else None
    out = {}
    for cve in cves:
        entry = catalog.entries.get(cve) if catalog else None
        score = scores.get(cve) if scores else None
        if entry is not None or score is not None:
            out[cve] = kev.exploit_info(entry, score)
    return out


def _json(path: str) -> Any:
    """A report file already read by ``load_report_file`` once more, as its raw JSON."""
    import json
    from pathlib import Path

    return json.loads(Path(path).read_text(encoding="utf-8-sig"))
