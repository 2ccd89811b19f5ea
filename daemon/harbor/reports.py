"""Read vulnerability reports (Harbor's addition, or Trivy's own JSON) into a normalised ``Report``.

Pure: no I/O except ``load_report_file``. The Harbor client calls ``parse_harbor_addition`` on the
body of ``GET …/additions/vulnerabilities``; ``scanwatch report`` calls ``load_report_file``.

Normalisation (``harbor/API-NOTES.md`` §10, §11) so that two reads of the same scan compare equal:

- ``cwe_ids: [""]`` and ``links: [""]`` become ``()``; ``vendor_attributes: null`` is empty;
- ``preferred_cvss.score_v3 == 0`` with no V3 score in ``vendor_attributes`` is ``None``; a missing
  or null ``score_v3`` is derived as Harbor does (nvd ``V3Score``, else the first vendor's);
  the vector is ``preferred_cvss.vector_v3``, else (Harbor leaves it ``""`` for Trivy) the
  ``V3Vector`` of the vendor whose ``V3Score`` is the score in force;
- item severities become ``Severity`` (Harbor: ``Negligible`` → None, unknown → Unknown); the
  report-level ``severity`` (``""`` with no vulnerabilities) is not used;
- the ecosystem (``daemon/ecosystems.py``) is Trivy's PURL type, else its Result's ``Type``; in a
  Harbor item, its ``purl`` where one survives (Harbor 2.x drops the adapter's), else ``""``;
- ``fix_version: null`` is ``""``; occurrences are sorted by ``(id, package, version)`` in plain
  string order, and duplicate keys collapse into one (highest severity, union of
  ``artifact_digests``, the non-empty ``fix_version``).

Strings and numbers arrive cleaned by ``harbor/inbound.py`` (lone surrogates and control
characters replaced, non-finite numbers null); a non-finite score is no score.

Malformed content raises ``ReportFormatError`` naming the place:
``vulnerabilities[3].package: missing``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from daemon import ecosystems
from daemon.errors import ReportFormatError
from daemon.harbor import inbound
from daemon.model import REPORT_MIME_HARBOR_V10, REPORT_MIME_V11, Occurrence, Report, Severity

# In order of preference when a body carries both.
HARBOR_MIMES: tuple[str, ...] = (REPORT_MIME_V11, REPORT_MIME_HARBOR_V10)

_TRIVY_SEVERITIES = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "UNKNOWN": Severity.UNKNOWN,
}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _bad(where: str, what: str) -> ReportFormatError:
    return ReportFormatError(f"{where}: {what}")


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _bad(where, f"expected an object, got {_kind(value)}")
    return value


def _req_str(item: Mapping[str, object], key: str, where: str, *, empty_ok: bool = False) -> str:
    if key not in item or item[key] is None:
        raise _bad(f"{where}.{key}", "missing")
    value = item[key]
    if not isinstance(value, str):
        raise _bad(f"{where}.{key}", f"expected a string, got {_kind(value)}")
    if not value and not empty_ok:
        raise _bad(f"{where}.{key}", "empty")
    return value


def _opt_str(item: Mapping[str, object], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(f"{where}.{key}", f"expected a string, got {_kind(value)}")
    return value


def _str_list(item: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    """A list of strings; null, missing and ``[""]`` (Harbor's split of "") are empty."""
    value = item.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(f"{where}.{key}", f"expected a list, got {_kind(value)}")
    out: list[str] = []
    for n, entry in enumerate(value):
        if not isinstance(entry, str):
            raise _bad(f"{where}.{key}[{n}]", f"expected a string, got {_kind(entry)}")
        if entry and entry not in out:
            out.append(entry)
    return tuple(out)


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(where, f"expected a number, got {_kind(value)}")
    number = float(value)
    return number if math.isfinite(number) else None  # Infinity, NaN, 1e999: no score


def _time(value: object, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(where, f"expected an RFC 3339 time, got {_kind(value)}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _bad(where, f"not an RFC 3339 time: {value[:40]!r}") from None


def _vector(value: object) -> str:
    """A CVSS vector as given, "" for anything else: a vector only explains the score, so a
    malformed one costs the vector, not the report."""
    if not isinstance(value, str) or not value.startswith("CVSS:") or len(value) > 200:
        return ""
    return "".join(c for c in value if c.isprintable() and not c.isspace())


def _cvss_v3_from_vendors(cvss: Mapping[str, object] | None, where: str
                          ) -> tuple[float | None, str]:
    """Harbor's derivation: nvd's V3Score, else the first vendor (in the given order) with one;
    with that vendor's V3Vector ("" where it gives none)."""
    if not cvss:
        return None, ""
    scores: dict[str, tuple[float, str]] = {}
    for vendor, entry in cvss.items():
        fields = _obj(entry, f"{where}.{vendor}")
        score = _number(fields.get("V3Score"), f"{where}.{vendor}.V3Score")
        if score is not None:
            scores[vendor] = (score, _vector(fields.get("V3Vector")))
    if "nvd" in scores:
        return scores["nvd"]
    return next(iter(scores.values()), (None, ""))


def _cvss_map(value: object, where: str) -> Mapping[str, object] | None:
    if value is None:
        return None
    return _obj(value, where)


# --- Harbor ------------------------------------------------------------------------------------


def _harbor_item(raw: object, where: str) -> Occurrence:
    item = _obj(raw, where)
    vendor_attributes = _cvss_map(item.get("vendor_attributes"), f"{where}.vendor_attributes")
    cvss = None
    if vendor_attributes is not None:
        cvss = _cvss_map(vendor_attributes.get("CVSS"), f"{where}.vendor_attributes.CVSS")
    derived, derived_vector = _cvss_v3_from_vendors(cvss, f"{where}.vendor_attributes.CVSS")
    preferred = _cvss_map(item.get("preferred_cvss"), f"{where}.preferred_cvss")
    score, vector = None, ""
    if preferred is not None:
        score = _number(preferred.get("score_v3"), f"{where}.preferred_cvss.score_v3")
        vector = _vector(preferred.get("vector_v3"))
    if score is None or (score == 0 and derived is None):
        # null: an older Harbor (derive it ourselves); 0 with no V3 anywhere: "no score".
        score = derived
    if not vector and score is not None and score == derived:
        # Harbor leaves vector_v3 "" for Trivy; the vendor's vector goes with its score only
        # (a rescan updates Harbor's score, never vendor_attributes: a stale vector is none).
        vector = derived_vector
    return Occurrence(
        id=_req_str(item, "id", where),
        package=_req_str(item, "package", where),
        version=_req_str(item, "version", where, empty_ok=True),
        fix_version=_opt_str(item, "fix_version", where),
        severity=Severity.parse(_opt_str(item, "severity", where)),
        status=_opt_str(item, "status", where),
        cvss_v3=score,
        cvss_vector=vector,
        description=_opt_str(item, "description", where),
        links=_str_list(item, "links", where),
        artifact_digests=_str_list(item, "artifact_digests", where),
        cwe_ids=_str_list(item, "cwe_ids", where),
        # harbor-scanner-trivy sends "purl", Harbor (2.x) drops it: read it where it survives.
        ecosystem=ecosystems.from_purl(_opt_str(item, "purl", where)),
    )


def parse_harbor_report(data: object) -> Report:
    """Parse a bare Harbor report (``{generated_at, scanner, severity, vulnerabilities}``)."""
    body = _obj(data, "report")
    if "vulnerabilities" not in body:
        raise ReportFormatError("not a Harbor report (no 'vulnerabilities')")
    items = body["vulnerabilities"]
    if items is None:  # Clair-era Harbor sent null for "none"
        items = []
    if not isinstance(items, list):
        raise _bad("vulnerabilities", f"expected a list, got {_kind(items)}")
    scanner = _cvss_map(body.get("scanner"), "scanner") or {}
    _opt_str(body, "severity", "report")  # "" with no vulnerabilities: accepted, not used
    return Report(
        scanner_name=_opt_str(scanner, "name", "scanner"),
        scanner_version=_opt_str(scanner, "version", "scanner"),
        scanner_vendor=_opt_str(scanner, "vendor", "scanner"),
        generated_at=_time(body.get("generated_at"), "generated_at"),
        occurrences=normalise(
            _harbor_item(raw, f"vulnerabilities[{n}]") for n, raw in enumerate(items)
        ),
    )


def parse_harbor_addition(data: object) -> Report | None:
    """Parse the body of Harbor's vulnerabilities addition.

    Accepts ``{<mime>: report}`` under either mime type (1.1 preferred when both are present) or
    the bare report object. Returns ``None`` for ``{}`` (or ``{<mime>: {}}``): the scan is
    pending, running, failed or never happened, which is never "0 vulnerabilities". Raises
    ``ReportFormatError`` naming the place for anything else that is not a report.
    """
    body = _obj(data, "report")
    if not body:
        return None
    for mime in HARBOR_MIMES:
        if mime in body:
            inner = body[mime]
            if isinstance(inner, dict) and not inner:
                return None
            return parse_harbor_report(inner)
    if "vulnerabilities" in body:
        return parse_harbor_report(body)
    keys = ", ".join(sorted(body)[:3])
    raise ReportFormatError(f"not a Harbor vulnerability report (keys: {keys})")


# --- Trivy -------------------------------------------------------------------------------------


def _trivy_item(raw: object, where: str, result_type: str) -> Occurrence:
    item = _obj(raw, where)
    ident = _cvss_map(item.get("PkgIdentifier"), f"{where}.PkgIdentifier") or {}
    purl = _opt_str(ident, "PURL", f"{where}.PkgIdentifier")
    cvss = _cvss_map(item.get("CVSS"), f"{where}.CVSS")
    primary = _opt_str(item, "PrimaryURL", where)
    links = (primary,) if primary else _str_list(item, "References", where)
    severity_text = _opt_str(item, "Severity", where).upper()
    score, vector = _cvss_v3_from_vendors(cvss, f"{where}.CVSS")
    return Occurrence(
        id=_req_str(item, "VulnerabilityID", where),
        package=_req_str(item, "PkgName", where),
        version=_req_str(item, "InstalledVersion", where, empty_ok=True),
        fix_version=_opt_str(item, "FixedVersion", where),
        # The adapter maps exactly these five and anything else to Unknown (API-NOTES §11).
        severity=_TRIVY_SEVERITIES.get(severity_text, Severity.UNKNOWN),
        status=_opt_str(item, "Status", where),
        cvss_v3=score,
        cvss_vector=vector,
        description=_opt_str(item, "Description", where),  # Title is dropped, as Harbor does
        links=links,
        cwe_ids=_str_list(item, "CweIDs", where),
        ecosystem=ecosystems.from_trivy(result_type, purl),
    )


def parse_trivy(data: object) -> Report:
    """Parse Trivy's JSON (SchemaVersion 2) the way harbor-scanner-trivy converts it.

    Vulnerabilities of every Result are flattened (a Result may have none, or no key at all),
    then collapsed on ``(id, package, version)``: Target, Class, Type and PkgPath are lost.
    """
    body = _obj(data, "report")
    version = body.get("SchemaVersion")
    if version is not None and version != 2:
        raise _bad("SchemaVersion", f"unsupported Trivy schema {version!r} (expected 2)")
    results = body.get("Results")
    if results is None:  # Trivy omits Results when there is nothing to report
        results = []
    if not isinstance(results, list):
        raise _bad("Results", f"expected a list, got {_kind(results)}")
    found: list[Occurrence] = []
    for r, raw_result in enumerate(results):
        result = _obj(raw_result, f"Results[{r}]")
        vulns = result.get("Vulnerabilities")
        if vulns is None:
            continue
        if not isinstance(vulns, list):
            raise _bad(f"Results[{r}].Vulnerabilities", f"expected a list, got {_kind(vulns)}")
        where = f"Results[{r}].Vulnerabilities"
        kind = _opt_str(result, "Type", f"Results[{r}]")
        found.extend(_trivy_item(raw, f"{where}[{n}]", kind) for n, raw in enumerate(vulns))
    trivy = _cvss_map(body.get("Trivy"), "Trivy") or {}
    return Report(
        scanner_name="Trivy",
        scanner_vendor="Aqua Security",
        scanner_version=_opt_str(trivy, "Version", "Trivy"),
        generated_at=_time(body.get("CreatedAt"), "CreatedAt"),
        occurrences=normalise(found),
    )


# --- common ------------------------------------------------------------------------------------


def _merge(a: Occurrence, b: Occurrence) -> Occurrence:
    """Two items with one key: keep the higher severity's details, union what is a set."""
    first, second = (a, b) if a.severity >= b.severity else (b, a)
    digests = tuple(sorted(set(a.artifact_digests) | set(b.artifact_digests)))
    links = first.links + tuple(x for x in second.links if x not in first.links)
    cwes = first.cwe_ids + tuple(x for x in second.cwe_ids if x not in first.cwe_ids)
    return Occurrence(
        id=first.id,
        package=first.package,
        version=first.version,
        fix_version=first.fix_version or second.fix_version,
        severity=first.severity,
        status=first.status or second.status,
        cvss_v3=first.cvss_v3 if first.cvss_v3 is not None else second.cvss_v3,
        cvss_vector=first.cvss_vector if first.cvss_v3 is not None else second.cvss_vector,
        description=first.description or second.description,
        links=links,
        artifact_digests=digests,
        cwe_ids=cwes,
        ecosystem=first.ecosystem or second.ecosystem,
    )


def normalise(occurrences: Iterable[Occurrence]) -> tuple[Occurrence, ...]:
    """Collapse duplicate keys and sort by ``(id, package, version)`` in plain string order."""
    by_key: dict[tuple[str, str, str], Occurrence] = {}
    for occ in occurrences:
        seen = by_key.get(occ.key)
        by_key[occ.key] = occ if seen is None else _merge(seen, occ)
    return tuple(by_key[k] for k in sorted(by_key))


def parse_report(data: object) -> Report | None:
    """Recognise a Harbor addition, a bare Harbor report or a Trivy report from its content.

    ``None`` only for Harbor's "no report yet" (``{}``).
    """
    if isinstance(data, list):
        raise ReportFormatError("a JSON list, not a report object")
    body = _obj(data, "report")
    if "Results" in body or "SchemaVersion" in body:
        return parse_trivy(body)
    if not body or "vulnerabilities" in body or any(m in body for m in HARBOR_MIMES):
        return parse_harbor_addition(body)
    raise ReportFormatError(
        "neither a Harbor nor a Trivy report (no 'vulnerabilities' or 'Results')"
    )


def load_report_file(path: str | Path) -> Report:
    """Read a report file of either format, whatever its name. Errors name the file, on one line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReportFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReportFormatError(f"{path}: not UTF-8 text, so not a JSON report") from None
    try:
        data = inbound.loads(text)  # strings cleaned, numbers bounded (harbor/inbound.py)
    except json.JSONDecodeError as exc:
        raise ReportFormatError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:
        raise ReportFormatError(f"{path}: not a readable JSON report ({exc})") from None
    try:
        report = parse_report(data)
    except ReportFormatError as exc:
        raise ReportFormatError(f"{path}: {exc}") from None
    if report is None:
        raise ReportFormatError(f"{path}: an empty addition ({{}}): the scan has not finished")
    return report
