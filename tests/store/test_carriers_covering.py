"""The carriers of findings are read from indexes alone (migration 19): SQLite's plan for both
reads of ``carriers.carried`` names a covering index for each table, so a registry-wide listing
visits neither ``content_finding`` nor ``artifact`` rows (issue 11: the listing's largest cost
was those lookups)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Select, text

from daemon.store import carriers
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, success


def _plan(store_url: str, stmt: Select[object], **params: object) -> list[str]:
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            sql = str(stmt.params(**params).compile(
                conn, compile_kwargs={"literal_binds": True, "render_postcompile": True}))
            return [str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]
    finally:
        store.close()


def test_both_carrier_reads_use_covering_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = open_store(url)
    store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
    store.record_scan(success("sha256:a", ["CVE-1:openssl:1.0:1.1:Critical"], at(0)), at(0))
    store.close()
    by_pair = _plan(url, carriers._BY_PAIR_IN_REPOSITORIES, vulnerabilities=["CVE-1"],
                    packages=["openssl"], repositories=[1, 2])
    assert any("COVERING INDEX ix_content_finding_key" in line for line in by_pair), by_pair
    assert any("COVERING INDEX ix_artifact_content" in line for line in by_pair), by_pair
    # the listing finds the one carrier through them
    store = open_store(url)
    with store.engine.connect() as conn:
        found = carriers.carried(conn, {(1, "CVE-1", "openssl")})
    store.close()
    assert [c[:3] for c in found[(1, "CVE-1", "openssl")]] == [("sha256:a", "1.0", "1.1")]
