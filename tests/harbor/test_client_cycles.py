"""A response the client has read is freed as soon as it is let go, not left in a cycle.

httpx's response and its stream refer to each other. During a run the collector freezes what
survived two young collections (``scan/gcpolicy.py``), so each response caught alive by one
waited, frozen, for the run's end: hundreds through a large import (12 MB of them at 100,000
artifacts). With the collector off, whatever a cycle holds stays alive: after a walk over
real HTTP no response of it may remain.
"""

from __future__ import annotations

import gc
from typing import Any

import httpx

from daemon.harbor.client import HarborClient
from daemon.harbor.inventory import walk
from tests.harbor.test_inventory import registry as registry_of


def alive(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def test_a_read_response_is_freed_without_the_collector(make_sim: Any) -> None:
    sim = make_sim(projects=2, repositories_per_project=2, artifacts_per_repository=30,
                   scanned_share=1.0, index_share=0.2, chart_share=0.0)
    registry = registry_of(sim)
    gc.collect()
    before = alive(httpx.Response)
    gc.disable()
    try:
        async with HarborClient(registry) as client:
            inventory = await walk(client, registry)
            calls = client.calls
        left = alive(httpx.Response) - before
    finally:
        gc.enable()
    assert inventory.count() >= 120 and calls > 5
    assert left == 0, f"{left} of {calls} responses left in cycles"
