"""Startup cost of `scanwatch --help` against a bare `python -c pass`, medians of fresh processes.

Target: `scanwatch --help` under 0.25 s. If it is slower, look with
`.venv/bin/python -X importtime -m daemon --help 2>&1 | sort -t'|' -k2 -n | tail`: command modules
must import only the standard library at module level.

Usage: .venv/bin/python bench/startup.py [RUNS]   (default 15; prints the ratio last)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.25


def median_wall(command: list[str], runs: int) -> float:
    subprocess.run(command, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    runs = max(runs, 10)
    script = Path(sys.executable).with_name("scanwatch")
    if not script.exists():
        print(f"no console script at {script}; install the project into this venv", file=sys.stderr)
        return 1
    bare = median_wall([sys.executable, "-c", "pass"], runs)
    help_ = median_wall([str(script), "--help"], runs)
    verdict = "ok" if help_ < TARGET_SECONDS else f"SLOW (target {TARGET_SECONDS:.2f} s)"
    print(f"runs each:               {runs}")
    print(f"python -c pass (median): {bare * 1000:.1f} ms")
    print(f"scanwatch --help:        {help_ * 1000:.1f} ms  {verdict}")
    print(f"ratio --help / bare:     {help_ / bare:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
