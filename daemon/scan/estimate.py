"""How long a run would take under a registry's limits: pure, for `scanwatch schedule preview`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from daemon.config_types import RegistryConfig

PAGE = 100
DEFAULT_SCAN_TIME = timedelta(seconds=30)  # when history has never timed a scan here


@dataclass(frozen=True)
class RunEstimate:
    registry: str
    artifacts: int
    scans: int
    lanes: dict[str, int]
    calls: int
    duration: timedelta
    bound_by: str  # "rate limit", "scans in flight" or "nothing"


def estimate_run(
    registry: RegistryConfig,
    *,
    artifacts: int,
    projects: int,
    lanes: dict[str, int],
    scan_time: timedelta | None,
) -> RunEstimate:
    """Calls and wall time of one run that scans ``sum(lanes)`` of ``artifacts``.

    Calls: the walk (system info, project pages, per project its scanner and artifact pages),
    then per scan a trigger and a report fetch, plus status polls batched a page at a time.
    Time: the longer of what the token bucket allows for those calls and what
    ``max_scans_in_flight`` allows for the scans at ``scan_time`` each.
    """
    scans = sum(lanes.values())
    walk = 1 + max(1, math.ceil(projects / PAGE)) + projects * 2 + math.ceil(artifacts / PAGE)
    per_scan_time = scan_time or DEFAULT_SCAN_TIME
    waves = math.ceil(scans / max(1, registry.max_scans_in_flight))
    polls = waves * max(1, math.ceil(per_scan_time.total_seconds() / 5))
    calls = walk + 2 * scans + polls
    rate_time = max(0, calls - registry.burst) / registry.requests_per_second
    scan_wall = waves * per_scan_time.total_seconds()
    if scans == 0 and rate_time < 1:
        bound = "nothing"
    else:
        bound = "rate limit" if rate_time >= scan_wall else "scans in flight"
    return RunEstimate(registry.name, artifacts, scans, dict(lanes), calls,
                       timedelta(seconds=round(max(rate_time, scan_wall))), bound)
