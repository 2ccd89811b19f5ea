"""The scan queue under a stop request, against the simulator over real HTTP.

The daemon and ``run --once`` are tested as processes with real signals in
tests/service/test_stop_process.py; here the queue itself: a trigger that the rate limiter holds
back when the stop arrives is never sent, and the queue ends when its scans in flight have
ended, without waiting for the stop's deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from daemon.config_types import RegistryConfig, Secret
from daemon.harbor.client import HarborClient
from daemon.harbor.inventory import walk
from daemon.scan.collect import Collector
from daemon.scan.queue import Job, QueueOptions, ScanQueue
from daemon.scan.ratelimit import RegistryLimiter, WeightedCap
from daemon.scan.stop import StopRequest

FAST = QueueOptions(poll_initial=0.05, poll_max=0.3, early_error_window=0.3)
IMAGES = 4


def registry_for(sim: Any) -> RegistryConfig:
    return RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                          password=Secret(sim.admin[1], "literal"), requests_per_second=400.0,
                          burst=50, max_concurrent_requests=8, max_scans_in_flight=IMAGES)


async def test_a_trigger_the_rate_limiter_holds_back_is_not_sent_after_a_stop(
    make_sim: Any,
) -> None:
    sim = make_sim(seed=2, projects=1, repositories_per_project=1,
                   artifacts_per_repository=IMAGES, scanned_share=0.0, index_share=0.0,
                   chart_share=0.0, scan_seconds=0.2, scanner_concurrency=4)
    registry = registry_for(sim)
    async with HarborClient(registry) as fast:
        inventory = await walk(fast, registry)
    artifacts = inventory.usable_artifacts()
    assert len(artifacts) == IMAGES
    sim.control.reset_stats()

    stop = StopRequest()
    loop = asyncio.get_running_loop()
    loop_calls: list[asyncio.TimerHandle] = []

    def progress(job: Job) -> None:
        # Right after the first trigger: the second now waits ~2 s for the limiter's next
        # token, and the stop arrives during that wait.
        if job.ours and not stop.requested and not loop_calls:
            loop_calls.append(loop.call_later(0.2, stop.request, 600.0, "SIGTERM"))

    # One token every 2 s, one at once: the first trigger goes out, the next waits.
    slow = RegistryLimiter(0.5, 1, 8)
    async with HarborClient(registry, limiter=slow) as client:
        queue = ScanQueue(client, Collector(client, db_times=inventory.db_times()),
                          registry_cap=WeightedCap(IMAGES), global_cap=WeightedCap(IMAGES),
                          by_project=False, repository_sizes=inventory.repository_sizes(),
                          options=FAST, on_progress=progress, stop=stop)
        result = await queue.run([(a, "unscanned") for a in artifacts], (), "test")

    assert stop.requested
    assert sim.control.stats()["scans_triggered"] == 1 == result.triggered
    assert result.not_triggered == IMAGES - 1 and result.left_running == 0
    assert result.outcomes() == {"complete": 1, "not_triggered": IMAGES - 1}
    # It ended when the one scan in flight ended, not at the deadline 600 s away.
    assert not stop.expired()
