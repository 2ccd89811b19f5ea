"""`scanwatch findings`: open findings, the fix first (package, installed → fixed, where, SLA).

Filters, order and limit run in the database; rows are written as they are read (table, CSV,
JSON lines, and ``--format json`` as one document written incrementally), so a registry of any
size lists in bounded memory. On a terminal the table shows the first page and counts the rest.
``--by action`` (the remediation plan, ``report show --by action``'s JSON) and ``--by image``
(counts per repository) answer "what do I fix first" in one screen.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon.commands._common import add_format, print_table, safe_cell, table_width
from daemon.commands._store import add_database, load_config, open_for_reading
from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.config_types import Config
    from daemon.model import Severity
    from daemon.store.findings import FindingHead, FindingRow

HELP = "list open findings, fixable first: package, installed → fixed version, tags, age, SLA"
SEVERITIES = ("Critical", "High", "Medium", "Low", "Unknown", "None")
HEADERS = ("PACKAGE", "INSTALLED → FIXED", "VULNERABILITY", "SEVERITY", "REPOSITORY", "TAGS",
           "AGE", "SLA")
FIELDS = ("package", "installed", "fixed", "vulnerability", "severity", "registry", "project",
          "repository", "tags", "digests", "first_seen", "opened_at", "age_days", "sla",
          "deadline", "ignored", "ignore_reason", "kev", "kev_date_added", "kev_due_date",
          "epss", "epss_percentile", "vex", "cvss_v3", "cvss_vector")
# A whole listing in these is read lean and written from its parts (findings_lean).
LEAN_FORMATS = ("json", "jsonl", "table")
PAGE_LIMIT = 5000  # up to this many rows come through the index, more through one full pass
_SAMPLE = 200  # table rows that set the column widths before the rest stream

Deadline = Callable[["Severity", datetime, str], "datetime | None"]  # (severity, opened, CVE)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("findings", parents=[common], help=HELP, description=HELP + ".")
    p.add_argument("--registry", help="only this registry (its name in the config)")
    p.add_argument("--project", help="only this project")
    p.add_argument("--repository", help="only this repository (without the project)")
    p.add_argument("--package", help="only findings in this package (its name as reports give it)")
    p.add_argument("--severity", metavar="LEVEL", type=str.capitalize,
                   choices=SEVERITIES, help="this severity and above: " + ", ".join(SEVERITIES))
    p.add_argument("--fixable", action="store_true", help="only findings with a fix version")
    p.add_argument("--overdue", action="store_true", help="only findings past their [sla] deadline")
    p.add_argument("--include-ignored", action="store_true",
                   help="also findings hidden by [[ignore]] rules, `scanwatch ignore` rules, "
                        "Harbor allowlists or VEX statements")
    p.add_argument("--kev", action="store_true",
                   help="only findings whose CVE is in CISA's Known Exploited Vulnerabilities "
                   "(the [[feed]] copy in force)")
    p.add_argument("--min-epss", metavar="SCORE", type=_score,
                   help="only findings whose CVE's EPSS score is at least SCORE (0-1)")
    p.add_argument("--by", choices=("action", "image"),
                   help="a summary instead of the list: action = one upgrade per (package, "
                        "installed version), known exploited (KEV) first, then fixable, EPSS, "
                        "worst, widest; image = counts per repository, worst first")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--limit", metavar="N", type=_positive,
                      help="only the first N findings (default on a terminal: one page)")
    size.add_argument("--all", action="store_true",
                      help="every finding, also on a terminal (the default elsewhere)")
    p.add_argument("--wide", action="store_true", help="every column in full, whatever the "
                   "terminal's width (a pipe always gets them in full)")
    add_format(p, "csv", "jsonl")
    add_database(p)
    p.set_defaults(handler=run)


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a score from 0 to 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return value


def run(args: argparse.Namespace) -> int:
    from daemon.model import Severity
    from daemon.store.findings import FindingQuery

    cfg = load_config(args, sends=False)
    now = datetime.now(UTC)
    if args.overdue and not _has_sla(cfg):
        raise UsageError("--overdue needs an [sla] section in the configuration")
    query = FindingQuery(
        registry=args.registry, project=args.project, repository=args.repository,
        min_severity=Severity.from_name(args.severity) if args.severity else None,
        fixable=True if args.fixable else None, include_ignored=args.include_ignored,
        package=args.package)
    limit = args.limit
    if limit is None and not args.all and args.by is None and args.format == "table" \
            and sys.stdout.isatty():
        limit = max(10, shutil.get_terminal_size().lines - 6)
    with open_for_reading(args, cfg) as store:
        import gc

        from daemon.store import intel as store_intel

        # What is loaded by now lives as long as the command: out of the collector's sight,
        # whose full passes over it were a fifth of a registry-wide listing's time.
        gc.freeze()

        intel = store_intel.tables(store.engine)
        sla_for = _sla_function(cfg, intel)
        keep = None
        if args.overdue and sla_for is not None:
            def keep(h: FindingHead) -> bool:
                deadline = sla_for(h.severity, h.opened_at, h.key.vulnerability)
                return deadline is not None and now > deadline
        keep = _exploit_filter(keep, intel, args.kev, args.min_epss)
        rules = store.ignore_rules(cfg) if cfg is not None else None
        if args.by is not None:
            from daemon.commands import findings_summary

            if args.by == "action":
                if keep is None:  # counted in SQL; a filter decided per finding reads each
                    return findings_summary.print_plan(store.finding_actions(
                        query, rules=rules, now=now, lineage=findings_summary.lineage_for(store)),
                        args.format, store)
                return findings_summary.actions(
                    store.finding_batches(query, rules=rules, now=now, keep=keep), args.format,
                    findings_summary.lineage_of(store), store)
            return findings_summary.images(
                store.finding_heads(query, rules=rules, now=now, keep=keep), args.format)
        rest = 0
        note = rules.vex_note if rules is not None and rules.vex else None
        records: Iterable[dict[str, Any]]
        if args.format in LEAN_FORMATS and keep is None and (
                limit is None or limit > PAGE_LIMIT):  # a whole listing: read lean
            from daemon.commands import findings_lean

            lean = itertools.islice(store.finding_listing(query, rules=rules, now=now), limit)
            if args.format == "table":
                records = findings_lean.table_records(
                    lean, lambda f: _record(f, now, sla_for, intel, note), now, sla_for, intel)
            else:
                encode = _json_encoder()
                findings_lean.write(
                    args.format, lean,
                    lambda f: encode(_record(f, now, sla_for, intel, note)).encode(),
                    now, sla_for, intel, note)
                return 0
        else:
            rows: Iterable[FindingRow]
            if limit is not None and limit <= PAGE_LIMIT:
                rows, rest = store.finding_page(query, limit=limit, rules=rules, now=now,
                                                keep=keep)
            else:
                rows = store.iter_findings(query, rules=rules, now=now, keep=keep)
                if limit is not None:
                    rows = _first(rows, limit)
            records = (_record(f, now, sla_for, intel, note) for f in rows)
        if args.format == "table":
            # A page with more after it ends with "… and N more" instead of a totals line.
            _table(records, bounded=limit is not None, wide=args.wide, empty=_empty(args),
                   totals=not rest)
        else:
            write(args.format, records)
    if rest and sys.stdout.isatty():
        print(f"… and {rest} more (--all lists every one, --limit N the first N)")
    return 0


def _first(rows: Iterable[FindingRow], limit: int) -> Iterator[FindingRow]:
    for n, row in enumerate(rows):
        if n >= limit:
            return
        yield row


def _exploit_filter(keep: Any, intel: Any, kev: bool, min_epss: float | None) -> Any:
    """``keep`` narrowed to KEV findings and/or those scoring ``min_epss`` or more."""
    if not kev and min_epss is None:
        return keep

    def exploited(h: FindingHead) -> bool:
        cve = h.key.vulnerability
        if kev and cve not in intel.kev:
            return False
        if min_epss is not None and intel.epss.get(cve, (0.0, 0.0))[0] < min_epss:
            return False
        return keep is None or bool(keep(h))

    return exploited


def _record(f: FindingRow, now: datetime, sla_for: Deadline | None,
            intel: Any = None, note: Callable[[Any], str] | None = None) -> dict[str, Any]:
    # (``findings_lean`` writes the same keys in the same order from its parts)
    return {
        "package": f.key.package, "installed": ", ".join(f.installed_versions),
        "fixed": f.fix_version or None, "vulnerability": f.key.vulnerability,
        "severity": f.severity.label, "cvss_v3": f.cvss_v3, "cvss_vector": f.cvss_vector or None,
        "registry": f.key.registry, "project": f.key.project,
        "repository": f.key.repository, "tags": list(f.tags), "digests": list(f.digests),
        # each installed version with the images (digests) that carry it
        "installed_versions": [{"version": v, "digests": list(ds)} for v, ds in f.carriers],
        **when(f.first_seen, f.opened_at, f.severity, f.key.vulnerability, now, sla_for),
        "ignored": f.ignored, "ignore_reason": f.ignore_reason or None,
        **exploit_fields(f.key.vulnerability, intel),
        # a VEX statement that does not silence it: "VEX under_investigation", "VEX affected: …"
        "vex": (note(f.key) if note else "") or None,
    }


def when(first_seen: datetime, opened: datetime, severity: Severity, cve: str, now: datetime,
         sla_for: Deadline | None) -> dict[str, Any]:
    """A record's times: first seen, opened, its age and SLA state at ``now``."""
    deadline = sla_for(severity, opened, cve) if sla_for else None
    sla: str | None
    if deadline is None:
        sla = None  # no [sla] deadline for this severity
    elif now > deadline:
        sla = f"overdue {(now - deadline).days}d"
    else:
        sla = f"due in {(deadline - now).days}d"
    return {"first_seen": first_seen.isoformat(), "opened_at": opened.isoformat(),
            "age_days": (now - opened).days, "sla": sla,
            "deadline": deadline.isoformat() if deadline else None}


NOT_EXPLOITED: dict[str, Any] = {"kev": False, "kev_date_added": None, "kev_due_date": None,
                                 "epss": None, "epss_percentile": None}


def exploit_fields(cve: str, intel: Any) -> dict[str, Any]:
    kev = intel.kev.get(cve) if intel else None
    score = intel.epss.get(cve) if intel else None
    if kev is None and score is None:
        return NOT_EXPLOITED  # most findings: one shared value (records are only read)
    return {"kev": kev is not None,
            "kev_date_added": kev[0].isoformat() if kev else None,
            "kev_due_date": kev[1].isoformat() if kev else None,
            "epss": score[0] if score else None,
            "epss_percentile": score[1] if score else None}


def _table(records: Iterable[dict[str, Any]], *, bounded: bool, wide: bool, empty: str,
           totals: bool = True) -> None:
    """A page (bounded) fits the terminal through ``print_table``; a full listing streams.
    Both neutralise what scan data holds, end with a totals line and say when nothing matched."""
    n = fixable = 0
    repos: set[tuple[str, str, str]] = set()

    def counted(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[str, ...]]:
        nonlocal n, fixable
        for r in rows:
            n += 1
            fixable += bool(r["fixed"])
            repos.add((r["registry"], r["project"], r["repository"]))
            yield _cells(r)

    def total() -> str:
        return f"{n} finding(s), {fixable} fixable, in {len(repos)} repository(ies)"

    if bounded:
        rows = list(counted(records))
        print_table(HEADERS, rows, width=table_width(wide), total=total() if totals else "",
                    empty=empty)
        return
    it = counted(records)
    first = next(it, None)
    if first is None:
        print(empty)
        return
    stream_table(HEADERS, itertools.chain([first], it))
    print(total())


def _empty(args: argparse.Namespace) -> str:
    given = [f"--{k} {v}" for k in ("registry", "project", "repository", "package", "severity")
             if (v := getattr(args, k))]
    given += [f"--{k}" for k in ("fixable", "overdue") if getattr(args, k)]
    text = "no open findings" + (f" match {' '.join(given)}" if given else "")
    if args.repository:
        text += ("; --repository is the name inside its project, as in "
                 "--project payments --repository api")
    return text


def write(fmt: str, records: Iterable[dict[str, Any]]) -> None:
    """Each record on stdout as it comes, in ``fmt``."""
    out = sys.stdout
    if fmt in ("json", "jsonl"):
        encode = _json_encoder()
        if fmt == "jsonl":
            for rec in records:
                out.write(encode(rec) + "\n")
            return
        # One valid document, written one element at a time (today's list of objects).
        first = True
        for rec in records:
            out.write(("[\n" if first else ",\n") + encode(rec))
            first = False
        out.write("[]\n" if first else "\n]\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for rec in records:
            # (installed_versions is the JSON's: the installed and digests columns have it)
            writer.writerow({**{k: v for k, v in rec.items() if k != "installed_versions"},
                             "tags": " ".join(rec["tags"]), "digests": " ".join(rec["digests"])})
    else:
        stream_table(HEADERS, (_cells(r) for r in records))


def _json_encoder() -> Callable[[dict[str, Any]], str]:
    """One record as compact ASCII JSON text. orjson does the work (16
    times the standard encoder's speed: the listing's largest cost); the standard encoder only
    takes a record orjson would write with non-ASCII text, which it escapes."""
    import orjson

    standard = json.JSONEncoder(ensure_ascii=True, default=str, separators=(",", ":")).encode
    dumps, flags = orjson.dumps, orjson.OPT_PASSTHROUGH_DATETIME

    def encode(rec: dict[str, Any]) -> str:
        data = dumps(rec, default=str, option=flags)
        return data.decode() if data.isascii() else standard(rec)

    return encode


def _cells(r: dict[str, Any]) -> tuple[str, ...]:
    return (r["package"], f"{r['installed']} → {r['fixed'] or '(no fix yet)'}",
            r["vulnerability"] + (" KEV" if r.get("kev") else ""),
            r["severity"] + (" (ignored)" if r["ignored"] else ""),
            f"{r['registry']}/{r['project']}/{r['repository']}",
            _tags(r["tags"]), f"{r['age_days']}d", r["sla"] or "-")


def stream_table(headers: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> None:
    """An aligned text table whose widths come from its first rows; later rows stream (a
    longer cell there only pushes its own line wider)."""
    it = iter(rows)
    sample = [tuple(safe_cell(c) for c in r) for _, r in zip(range(_SAMPLE), it, strict=False)]
    widths = [max([len(h)] + [len(r[i]) for r in sample]) for i, h in enumerate(headers)]
    out = sys.stdout

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n"

    out.write(line(headers))
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in sample:
        out.write(line(row))
    for row in it:
        out.write(line(tuple(safe_cell(c) for c in row)))


def _tags(tags: list[str], limit: int = 3) -> str:
    shown = ", ".join(tags[:limit])
    return shown + (f" (+{len(tags) - limit})" if len(tags) > limit else "")


def _has_sla(cfg: Config | None) -> bool:
    return cfg is not None and bool(cfg.sla.deadlines or cfg.sla.kev_due_date)


def _sla_function(cfg: Config | None, intel: Any = None) -> Deadline | None:
    """deadline(severity, opened_at, CVE) from daemon/sla.py and [sla] (with KEV's due date
    of the CVE where ``kev_due_date`` asks for it); None when there is no [sla]."""
    if cfg is None or not _has_sla(cfg):
        return None
    from daemon import sla

    by_policy = sla.deadline_function(cfg.sla)
    kev = intel.kev if intel is not None else {}

    def deadline(severity: Severity, opened: datetime, cve: str) -> datetime | None:
        entry = kev.get(cve)
        return by_policy(severity, opened, entry[1] if entry else None)
    return deadline

