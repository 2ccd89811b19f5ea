"""Run estimates for `schedule preview`: calls and time under the registry's limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from daemon.config_types import RegistryConfig, Secret
from daemon.scan.estimate import estimate_run


def registry(**kw):
    return RegistryConfig("prod", "https://h", "u", Secret("x", "literal"), **kw)


@pytest.mark.parametrize(
    ("kw", "lanes", "scan_time", "calls", "seconds", "bound"),
    [
        pytest.param({}, {}, None, 1 + 1 + 2 + 1, 0, "nothing", id="nothing-to-scan"),
        # 1000 artifacts, 10 projects: walk 1 + 1 + 20 + 10 = 32 calls; 100 scans → 200 calls;
        # 50 waves of 2 at 10 s → 2 polls each = 100. 332 calls at 5/s after a burst of 5.
        pytest.param({"requests_per_second": 5.0, "burst": 5, "max_scans_in_flight": 2},
                     {"unscanned": 100}, timedelta(seconds=10), 332, 500, "scans in flight",
                     id="scan-bound"),
        pytest.param({"requests_per_second": 1.0, "burst": 5, "max_scans_in_flight": 50},
                     {"stale": 100}, timedelta(seconds=1), 32 + 200 + 2, 229, "rate limit",
                     id="rate-bound"),
    ],
)
def test_it_estimates_calls_and_time(kw, lanes, scan_time, calls, seconds, bound):
    artifacts, projects = (1000, 10) if lanes else (10, 1)
    est = estimate_run(registry(**kw), artifacts=artifacts, projects=projects, lanes=lanes,
                       scan_time=scan_time)
    assert (est.calls, est.duration.total_seconds(), est.bound_by) == (calls, seconds, bound)
    assert est.scans == sum(lanes.values())
