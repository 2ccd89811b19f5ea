"""Shared by `scan`, `status`, `scan-log` and `run`: config and store opening, status labels.

Standard library only at module level; httpx, the store and the pipeline load inside functions.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from daemon.commands._common import config_path

if TYPE_CHECKING:
    from daemon.config_types import Config
    from daemon.model import Artifact


def load_config(args: argparse.Namespace, *, sends: bool = False) -> Config:
    """The configuration, leniently: a missing secret is said on stderr, not fatal (it may be
    a receiver's, which these commands do not need; a registry's shows as its 401 too). The
    receivers' URL schemes are checked with apprise only for a command that ``sends``."""
    import sys

    from daemon import config

    cfg = config.load(config_path(args), strict=False, receiver_schemes=sends)
    for warning in cfg.warnings:
        print(f"scanwatch: warning: {warning}", file=sys.stderr)
    return cfg


def artifact_name(artifact: Artifact) -> str:
    ref = artifact.ref
    base = f"{ref.registry}/{ref.project}/{ref.repository}"
    if artifact.tags:
        return f"{base}:{sorted(t.name for t in artifact.tags)[0]}"
    return f"{base}@{ref.digest[:19]}"


def full_target(artifact: Artifact) -> str:
    """A target that names exactly this artifact: by its tag where it has one, else its digest."""
    ref = artifact.ref
    if artifact.tags:
        tag = sorted(t.name for t in artifact.tags)[0]
        return f"{ref.registry}/{ref.project}/{ref.repository}:{tag}"
    return f"{ref.registry}/{ref.project}/{ref.repository}@{ref.digest}"


def status_of(artifact: Artifact, db_time: Any = None) -> dict[str, Any]:
    """An artifact's status as Harbor's UI names it, with its details, as a plain dict."""
    from daemon.model import SEVERITY_LABELS, ScanState
    from daemon.scan.select import is_scannable

    overview = artifact.overview
    row: dict[str, Any] = {"artifact": artifact_name(artifact), "digest": artifact.ref.digest,
                           "tags": sorted(t.name for t in artifact.tags), "type": artifact.type}
    if not is_scannable(artifact):
        why = not_supported_reason(artifact)
        return {**row, "status": "Not Supported", "reason": why, "detail": why}
    if overview is None or overview.state is ScanState.SCHEDULED:
        return {**row, "status": "Not Scanned", "detail": ""}
    if overview.state is ScanState.PENDING:
        return {**row, "status": "Queued", "detail": ""}
    if overview.state is ScanState.RUNNING:
        return {**row, "status": "Scanning", "percent": overview.complete_percent,
                "detail": f"{overview.complete_percent}%"}
    if overview.state in (ScanState.ERROR, ScanState.STOPPED):
        reason = "stopped" if overview.state is ScanState.STOPPED else "failed"
        hint = f"scanwatch scan-log {full_target(artifact)}"
        return {**row, "status": "Error", "reason": reason, "hint": hint,
                "detail": f"{reason}; see `{hint}`"}
    counts = {label: overview.counts.get(label, 0) for label in SEVERITY_LABELS
              if label != "None"}
    scanner = overview.scanner
    scanner_text = f"{scanner.name} {scanner.version}".strip() if scanner else ""
    db_text = db_time.date().isoformat() if db_time is not None else ""
    detail = " ".join(f"{k[0]}:{v}" for k, v in counts.items())
    detail += f" fixable:{overview.fixable}"
    if scanner_text:
        detail += f" ({scanner_text}" + (f", DB {db_text})" if db_text else ")")
    return {**row, "status": "Complete", "counts": counts, "total": overview.total,
            "fixable": overview.fixable, "scanner": scanner_text, "scanner_db": db_text,
            "detail": detail}


def not_supported_reason(artifact: Artifact) -> str:
    """Why Harbor's scanner does not scan this artifact, from what Harbor tells of it."""
    kind = (artifact.type or "unknown").upper()
    if kind != "IMAGE":
        return f"type {kind}: the scanner scans images only"
    return "type IMAGE, but Harbor offers no vulnerability scan for it (no scanner capability)"


def group_targets(cfg: Config, texts: list[str], *, partial: bool = False) -> dict[str, list[Any]]:
    """TARGETs by registry name (an unknown registry raises UnknownTarget)."""
    from daemon.errors import UnknownTarget
    from daemon.harbor.targets import parse_target, registry_for

    grouped: dict[str, list[Any]] = {}
    for text in texts:
        try:
            target = parse_target(text, partial=partial)
            registry_for(cfg, target)
        except UnknownTarget as exc:
            raise UnknownTarget(str(exc) + _full_target_hint(cfg, text, partial)) from None
        grouped.setdefault(target.registry, []).append(target)
    return grouped


def _full_target_hint(cfg: Config, text: str, partial: bool) -> str:
    """"; did you mean REGISTRY/TEXT?" where one registry is configured and the target with
    its name in front is a valid one (the commonest slip: the registry prefix left out)."""
    from daemon.errors import UnknownTarget
    from daemon.harbor.targets import parse_target

    if len(cfg.registries) != 1:
        return ""
    name = cfg.registries[0].name
    if text.strip().startswith(f"{name}/"):
        return ""
    full = f"{name}/{text.strip()}"
    try:
        parse_target(full, partial=partial)
    except UnknownTarget:
        return ""
    return f"; did you mean {full}?"
