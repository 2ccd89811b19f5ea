"""CISA's Known Exploited Vulnerabilities catalog: parsed, validated against CISA's own JSON
schema, compared between versions. Pure.

The schema (``kev-schema.json``, CC0, from cisagov/kev-data) is checked with ``jsonschema``
(Draft 7 with format checks, so ``dateAdded``/``dueDate`` must be dates): a catalog that does
not validate is refused whole, so the last good copy stays in force.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from daemon.errors import FeedInvalid
from daemon.harbor import inbound
from daemon.model import ExploitInfo


@dataclass(frozen=True, slots=True)
class KevEntry:
    cve: str
    name: str
    vendor: str
    product: str
    date_added: date
    due_date: date
    required_action: str
    ransomware: bool  # knownRansomwareCampaignUse == "Known"
    notes: str = ""


@dataclass(frozen=True, slots=True)
class KevCatalog:
    version: str
    released: str
    entries: dict[str, KevEntry]


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(resources.files("daemon.intel").joinpath("kev-schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def parse(data: bytes, where: str) -> KevCatalog:
    """The catalog in ``data``; ``FeedInvalid`` (one line naming ``where`` and the first
    problem with its JSON path) for anything that is not a valid KEV catalog."""
    try:
        body = inbound.loads(data)
    except ValueError as exc:
        raise FeedInvalid(f"{where}: not JSON: {exc}") from None
    error = next(iter(sorted(_validator().iter_errors(body), key=lambda e: list(e.path))), None)
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise FeedInvalid(f"{where}: not a KEV catalog: at {path}: {error.message[:200]}")
    entries: dict[str, KevEntry] = {}
    for v in body["vulnerabilities"]:
        entries[v["cveID"]] = KevEntry(
            cve=v["cveID"], name=v["vulnerabilityName"], vendor=v["vendorProject"],
            product=v["product"], date_added=date.fromisoformat(v["dateAdded"]),
            due_date=date.fromisoformat(v["dueDate"]), required_action=v["requiredAction"],
            ransomware=v.get("knownRansomwareCampaignUse", "") == "Known",
            notes=v.get("notes", ""))
    if len(entries) != body["count"]:
        raise FeedInvalid(f"{where}: not a KEV catalog: count says {body['count']}, "
                          f"{len(entries)} distinct entries")
    return KevCatalog(body["catalogVersion"], body["dateReleased"], entries)


def exploit_info(entry: Any, score: tuple[float, float] | None) -> ExploitInfo:
    """What KEV (``entry``: a ``KevEntry`` or a stored row of the same fields, None when not
    listed) and EPSS (``score``: (score, percentile) or None) say of one CVE."""
    return ExploitInfo(
        kev=entry is not None, kev_name=entry.name if entry else "",
        date_added=entry.date_added if entry else None,
        due_date=entry.due_date if entry else None,
        required_action=entry.required_action if entry else "",
        ransomware=bool(entry.ransomware) if entry else False,
        epss=score[0] if score else None, epss_percentile=score[1] if score else None)


@dataclass(frozen=True, slots=True)
class KevDelta:
    added: tuple[KevEntry, ...]
    removed: tuple[KevEntry, ...]


def delta(before: KevCatalog | None, after: KevCatalog) -> KevDelta:
    """What ``after`` adds to and removes from ``before`` (None: first fetch, nothing is new:
    a first catalog is a baseline, not 1,400 alerts)."""
    if before is None:
        return KevDelta((), ())
    added = tuple(after.entries[c] for c in sorted(set(after.entries) - set(before.entries)))
    removed = tuple(before.entries[c] for c in sorted(set(before.entries) - set(after.entries)))
    return KevDelta(added, removed)
