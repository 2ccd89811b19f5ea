"""The layer of each vulnerability of a Trivy JSON report, read directly (pure).

Trivy names the layer of each vulnerability (``Layer.DiffID``); the report's
``Metadata.DiffIDs`` order the layers and ``Metadata.ImageConfig.history`` the build steps.
The non-empty steps align with the layers where there are as many of each (otherwise no step is
named). Given the base image's report too, the layers the base also has (a DiffID prefix) are
the base's: a vulnerability in one of them comes from the base, one above from the image's own
layers. Harbor's reports carry no layer (API-NOTES §10): this is for report files only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon.lineage import step_words
from daemon.lineage.advice import BASE, OWN, UNKNOWN, Source


def diff_ids(data: Any) -> tuple[str, ...]:
    meta = data.get("Metadata") if isinstance(data, dict) else None
    ids = meta.get("DiffIDs") if isinstance(meta, dict) else None
    return tuple(str(i) for i in ids) if isinstance(ids, list) else ()


def _steps(data: Mapping[str, Any], layers: int) -> list[str]:
    config = (data.get("Metadata") or {}).get("ImageConfig") or {}
    history = config.get("history") if isinstance(config, dict) else None
    if not isinstance(history, list):
        return []
    steps = [str(h.get("created_by") or "") for h in history
             if isinstance(h, dict) and not h.get("empty_layer")]
    return steps if len(steps) == layers else []


def sources(data: Any, base: Any = None) -> dict[tuple[str, str, str], Source]:
    """(vulnerability, package, installed version) → its source, for each one with a layer."""
    if not isinstance(data, dict):
        return {}
    layers = diff_ids(data)
    steps = _steps(data, len(layers))
    below = 0
    base_name = ""
    if base is not None:
        theirs = diff_ids(base)
        while below < min(len(theirs), len(layers)) and theirs[below] == layers[below]:
            below += 1
        base_name = str(base.get("ArtifactName") or "") if isinstance(base, dict) else ""
    out: dict[tuple[str, str, str], Source] = {}
    for result in data.get("Results") or []:
        for v in (result.get("Vulnerabilities") or []) if isinstance(result, dict) else []:
            layer = (v.get("Layer") or {}).get("DiffID") if isinstance(v, dict) else None
            if layer not in layers:
                continue
            n = layers.index(layer)
            step = step_words(steps[n]) if steps else ""
            kind = UNKNOWN if base is None else (BASE if n < below else OWN)
            out[(str(v.get("VulnerabilityID")), str(v.get("PkgName")),
                 str(v.get("InstalledVersion")))] = Source(
                kind, base_name if kind == BASE else "", "",
                f"layer {n + 1} of {len(layers)}" + (f": {step}" if step else ""))
    return out
