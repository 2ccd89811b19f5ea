"""The registry-wide listing reads carriers a chunk of findings at a time, each chunk ending
where a (package, vulnerability) ends (``findings._by_pairs``): on real Trivy reports recorded
into 24 repositories, the listing is the same whatever the chunk size, and no pair is split
between chunks (its contents would be read twice) unless it alone fills four chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.store import findings
from daemon.store.db import open_store
from daemon.store.findings import FindingQuery
from tests.store.store_helpers import at
from tests.store.test_actions_counted import seed


@pytest.mark.parametrize("size", [1, 3, 40])
def test_the_listing_is_the_same_in_chunks_that_end_with_a_pair(
        size: int, tmp_path: Path, trivy_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    seed(url, trivy_fixtures)
    store = open_store(url)
    now = at(1)
    with store.reading() as conn:
        whole = list(findings.ordered(conn, FindingQuery(), rules=None, now=now))
        monkeypatch.setattr(findings, "_ORDERED_CHUNK", size)
        heads = list(findings.heads_in_order(conn, FindingQuery(), rules=None, now=now))
        chunks = list(findings._by_pairs(heads))
        chunked = list(findings.ordered(conn, FindingQuery(), rules=None, now=now))
    store.close()
    assert len(whole) > 50
    assert chunked == whole
    assert [h for c in chunks for h in c] == heads
    pair_chunks: dict[tuple[str, str], set[int]] = {}
    for n, chunk in enumerate(chunks):
        assert size <= len(chunk) <= 4 * size or n == len(chunks) - 1
        for h in chunk:
            pair_chunks.setdefault((h.key.package, h.key.vulnerability), set()).add(n)
    split = {p for p, where in pair_chunks.items() if len(where) > 1}
    assert all(sum(1 for h in heads if (h.key.package, h.key.vulnerability) == p) > 4 * size
               for p in split), split
