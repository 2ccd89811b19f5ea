"""Benchmark: the client's CPU per request, against a bare httpx client on the same requests.

The simulator serves on its own thread; the event loop's thread does nothing but the client's
work, so its CPU time (``time.thread_time``) divided by the requests made is the client's cost
per request: the rate limiter, the request loop, the bounded read and the JSON parse. The
requests are what a run makes most: artifact listings (100 per page, with scan overviews) and
vulnerability reports. The reference is ``httpx.AsyncClient`` fetching the same URLs and parsing
them with ``json.loads`` (the stack's floor), measured in the same run. Prints the client's
µs/request and the ratio to the reference last.

    .venv/bin/python bench/client.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from daemon import log  # noqa: E402
from daemon.config_types import RegistryConfig, Secret  # noqa: E402
from daemon.harbor.client import ACCEPT_VULNERABILITIES, HarborClient  # noqa: E402
from daemon.sim import SimOptions, start_simulator  # noqa: E402


def cpu_per_request(work: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    """(CPU seconds of this thread per request, requests) for one run of ``work``."""
    async def timed() -> tuple[float, int]:
        started = time.thread_time()
        n = await work()
        return (time.thread_time() - started) / n, n
    return asyncio.run(timed())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    log.configure("warning")
    options = SimOptions(seed=3, projects=4, repositories_per_project=5,
                         artifacts_per_repository=100, scanned_share=1.0, index_share=0.0,
                         chart_share=0.0, vulnerabilities_per_artifact=20, scan_seconds=0.1)
    with start_simulator(options) as sim:
        registry = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                                  password=Secret(sim.admin[1], "literal"),
                                  requests_per_second=10_000.0, burst=10_000,
                                  max_concurrent_requests=4)
        inventory = sim.control.inventory()
        projects = sorted(inventory["per_project"])

        async def listings_and_reports(client: HarborClient) -> int:
            n = 0
            for project in projects:
                artifacts = await client.project_artifacts(project)
                n += -(-len(artifacts) // 100)
                for a in artifacts[:40]:
                    await client.vulnerabilities(project, a.ref.repository, a.ref.digest)
                    n += 1
            return n

        async def ours() -> int:
            async with HarborClient(registry) as client:
                await client.system_info()
                return await listings_and_reports(client) + 1

        async def bare() -> int:
            async with httpx.AsyncClient(base_url=sim.url + "/api/v2.0", auth=sim.admin,
                                         headers={"X-Accept-Vulnerabilities":
                                                  ACCEPT_VULNERABILITIES}) as http:
                n = 1
                json.loads((await http.get("/systeminfo")).content)
                urls: list[str] = []
                for project in projects:
                    page = 1
                    while True:
                        body: list[Any] = json.loads((await http.get(
                            f"/projects/{project}/artifacts",
                            params={"page": page, "page_size": 100, "with_tag": "true",
                                    "with_scan_overview": "true"})).content)
                        n += 1
                        for a in body:
                            if len(urls) < 40 * (projects.index(project) + 1):
                                repo = a["repository_name"].split("/", 1)[1]
                                enc = repo.replace("/", "%252F")
                                urls.append(f"/projects/{project}/repositories/{enc}"
                                            f"/artifacts/{a['digest']}/additions/vulnerabilities")
                        if len(body) < 100:
                            break
                        page += 1
                for url in urls:
                    json.loads((await http.get(url)).content)
                    n += 1
                return n

        ours_best = bare_best = float("inf")
        for _ in range(args.rounds):
            cost, n_ours = cpu_per_request(ours)
            ours_best = min(ours_best, cost)
            cost, n_bare = cpu_per_request(bare)
            bare_best = min(bare_best, cost)
    print(f"scanwatch client: {ours_best * 1e6:.0f} µs CPU/request over {n_ours} requests")
    print(f"bare httpx + json: {bare_best * 1e6:.0f} µs CPU/request over {n_bare} requests")
    print(f"ratio (client / bare httpx): {ours_best / bare_best:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
