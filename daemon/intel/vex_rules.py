"""The VEX rules in force: every ``[[vex]]`` source read and resolved against history (which
repositories hold a digest a statement names). A source that cannot be read is skipped with
one ``vex_unreadable`` line: its statements silence nothing until it is readable again."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from daemon import log
from daemon.config_types import Config
from daemon.errors import FeedInvalid
from daemon.intel import vex

_log = log.get(__name__)


def statements(config: Config, engine: Any) -> list[vex.Statement]:
    from daemon.store import intel as store_intel

    out: list[vex.Statement] = []
    for source in config.vex:
        try:
            if source.path:
                out.extend(vex.read_source(source.path))
            else:  # a URL: the copy ``intel refresh`` kept
                with engine.connect() as conn:
                    row = store_intel.load(conn, f"vex:{source.name}")
                if row is not None and row.body is not None:
                    out.extend(vex.parse(row.body, source.url))
        except FeedInvalid as exc:
            _log.warning("vex_unreadable", vex=source.name, error=str(exc))
    return out


def vex_rules(engine: Any, config: Config) -> tuple[vex.VexRule, ...]:
    from daemon.store import intel as store_intel

    found = statements(config, engine)
    wanted = {d for s in found for p in s.products for d in _digests(p)}
    with engine.connect() as conn:
        digests = store_intel.repositories_of(conn, wanted)
    hosts = {urlsplit(r.url).netloc: r.name for r in config.registries}
    return vex.resolve(found, digests, hosts)


def _digests(product: str) -> list[str]:
    if product.startswith("sha256:"):
        return [product]
    if product.startswith("pkg:oci/") and "@" in product:
        from urllib.parse import unquote

        version = unquote(product.split("@", 1)[1].split("?", 1)[0])
        return [version] if version.startswith("sha256:") else []
    return []
