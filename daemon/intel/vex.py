"""OpenVEX documents as a source of "not affected" decisions (pure but for reading files).

A statement (OpenVEX v0.2.0, and the v0.0.1 shape where ``vulnerability`` is a string) names a
vulnerability, products and a status. A product matches an image by:

- a digest (``sha256:…``), or a ``pkg:oci/NAME@sha256%3A…`` PURL: the repositories that hold
  that digest (history knows which);
- a ``pkg:oci/NAME?repository_url=HOST/PROJECT/REPO`` PURL without a digest: that repository
  (``tag=`` narrows nothing here: findings are per repository);
- anything else: a glob over ``project/repository`` (``payments/*``), as ``[[ignore]]``'s.

``not_affected`` and ``fixed`` silence the matching findings (the justification or impact
statement is the ignore reason); ``under_investigation`` is shown, not silenced; ``affected``
with an ``action_statement`` carries that text. Subcomponents (package PURLs) narrow a
statement to those packages. ``export`` writes the decisions in force as one OpenVEX document.

CSAF VEX is not read: the one CSAF parser on PyPI that reads VEX (Red Hat's ``csaf-lib``,
0.1.0b12) is a beta whose API still moves (it was ``csaf-vex`` before), ``csaf-tool`` is a CLI,
and hand-writing one is the defect the project avoids; public CSAF VEX documents (Red Hat's,
CIQ's) also name RPM packages of OS products (CPEs, product ids), not images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from daemon.errors import FeedInvalid
from daemon.harbor import inbound

CONTEXT = "https://openvex.dev/ns/v0.2.0"
SILENCING = ("not_affected", "fixed")
STATUSES = ("not_affected", "affected", "fixed", "under_investigation")


@dataclass(frozen=True, slots=True)
class VexRule:
    """One statement resolved to where it applies: ``scopes`` are (registry, project/repository)
    globs, ``packages`` package names ("" any)."""

    vulnerability: str
    status: str
    scopes: tuple[tuple[str, str], ...]
    packages: tuple[str, ...]
    text: str  # justification / impact statement, or the action statement for "affected"
    source: str
    products: tuple[str, ...] = ()  # as the document wrote them (for export)

    @property
    def silences(self) -> bool:
        return self.status in SILENCING


@dataclass(frozen=True, slots=True)
class Statement:
    vulnerability: str
    status: str
    products: tuple[str, ...]
    packages: tuple[str, ...]
    text: str
    source: str


def _name(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return str(value.get("name") or value.get("@id") or "")
    return ""


def _package_of(purl: str) -> str:
    """``pkg:deb/debian/git@1:2.39`` → ``git``."""
    path = purl.split("?", 1)[0].split("@", 1)[0]
    return unquote(path.rsplit("/", 1)[-1])


def parse(data: bytes, where: str) -> list[Statement]:
    """The statements of an OpenVEX document; ``FeedInvalid`` naming ``where`` otherwise."""
    try:
        doc = inbound.loads(data)
    except ValueError as exc:
        raise FeedInvalid(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or "openvex" not in str(doc.get("@context", "")):
        raise FeedInvalid(f"{where}: not an OpenVEX document (no openvex @context)")
    statements = doc.get("statements")
    if not isinstance(statements, list):
        raise FeedInvalid(f"{where}: statements: must be a list")
    out = []
    for n, s in enumerate(statements):
        at = f"{where}: statements[{n}]"
        if not isinstance(s, dict):
            raise FeedInvalid(f"{at}: must be an object")
        vuln = _name(s.get("vulnerability"))
        status = s.get("status")
        if not vuln:
            raise FeedInvalid(f"{at}.vulnerability: missing")
        if status not in STATUSES:
            raise FeedInvalid(f"{at}.status: {status!r} is not one of {', '.join(STATUSES)}")
        products: list[str] = []
        packages: list[str] = []
        for p in s.get("products") or []:
            products.append(_name(p))
            if isinstance(p, Mapping):
                packages.extend(_package_of(_name(c)) for c in p.get("subcomponents") or [])
        if not products:
            raise FeedInvalid(f"{at}.products: no product")
        if status == "affected":
            text = str(s.get("action_statement") or "")
        else:
            text = str(s.get("justification") or s.get("impact_statement") or
                       s.get("status_notes") or "")
        if status == "not_affected" and not text:
            raise FeedInvalid(f"{at}: not_affected needs a justification or impact_statement")
        out.append(Statement(vuln, str(status), tuple(products), tuple(packages), text, where))
    return out


def read_source(path: str) -> list[Statement]:
    """The statements of a file, or of every ``*.json`` in a directory (name order)."""
    p = Path(path)
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    out: list[Statement] = []
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise FeedInvalid(f"{f}: cannot read: {exc.strerror}") from None
        out.extend(parse(data, str(f)))
    return out


def _scopes(product: str, digests: Mapping[str, Sequence[tuple[str, str]]],
            hosts: Mapping[str, str]) -> list[tuple[str, str]]:
    """(registry glob, project/repository glob) pairs a product stands for."""
    if product.startswith("sha256:"):
        return list(digests.get(product, ()))
    if product.startswith("pkg:oci/"):
        parts = urlsplit(product)
        name, _, version = parts.path[len("oci/"):].partition("@")
        version = unquote(version)
        if version.startswith("sha256:"):
            return list(digests.get(version, ()))
        repo_url = (parse_qs(parts.query).get("repository_url") or [""])[0]
        host, _, path = repo_url.partition("/")
        registry = hosts.get(host, "*") if host else "*"
        return [(registry, path or f"*/{unquote(name)}")]
    return [("*", product)]


def resolve(statements: Iterable[Statement], digests: Mapping[str, Sequence[tuple[str, str]]],
            hosts: Mapping[str, str]) -> tuple[VexRule, ...]:
    """Statements as rules: ``digests`` maps a digest to the (registry, project/repository)
    that hold it; ``hosts`` a registry URL's host to the registry's name."""
    out = []
    for s in statements:
        scopes = tuple(sc for p in s.products for sc in _scopes(p, digests, hosts))
        out.append(VexRule(s.vulnerability, s.status, scopes, s.packages, s.text, s.source,
                           s.products))
    return tuple(out)


def export(ignores: Iterable[Any], rules: Iterable[VexRule], *, author: str, now: datetime,
           doc_id: str) -> dict[str, Any]:
    """One OpenVEX v0.2.0 document of the decisions in force: ``[[ignore]]`` rules (as
    ``not_affected`` with their reason as the impact statement) and the VEX statements read."""
    statements: list[dict[str, Any]] = []
    for rule in ignores:
        products = [f"{p}/{r}" if "/" not in r else r
                    for p in rule.projects for r in rule.repositories] or ["*"]
        stmt: dict[str, Any] = {
            "vulnerability": {"name": rule.vulnerability or "*"},
            "products": [_product(p, rule.package) for p in products],
            "status": "not_affected",
            "impact_statement": f"{rule.reason} (until {rule.expires.isoformat()})",
        }
        statements.append(stmt)
    for r in rules:
        stmt = {"vulnerability": {"name": r.vulnerability},
                "products": [_product(p, "", r.packages) for p in r.products],
                "status": r.status}
        if r.status == "affected":
            stmt["action_statement"] = r.text
        elif r.text:
            stmt["impact_statement" if r.status == "not_affected" else "status_notes"] = r.text
        statements.append(stmt)
    return {"@context": CONTEXT, "@id": doc_id, "author": author,
            "timestamp": now.isoformat(), "version": 1, "statements": statements}


def _product(ident: str, package: str, packages: Sequence[str] = ()) -> dict[str, Any]:
    names = [package] if package else list(packages)
    out: dict[str, Any] = {"@id": ident}
    if names:
        out["subcomponents"] = [{"@id": f"pkg:generic/{n}"} for n in names]
    return out


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
