"""Benchmark: parsing a full daily EPSS file (300,000 rows, FIRST's real format) into scores.

The file is written here in the exact shape of ``../shared/fixtures/epss`` (the comment line
``#model_version:…,score_date:…``, the header ``cve,epss,percentile``, gzip), with CVE ids
and scores spread like the real file's. Targets (issue #14): ``epss.parse`` under 2 s and under
100 MB of extra memory (peak RSS above the process before the parse, measured in a fresh child
process). The reference, measured in the same run, is the floor any reader pays: gunzip and the
stdlib C ``csv`` reader iterating the rows without keeping them. Prints the ratio last.

    .venv/bin/python bench/epss.py [--rows 300000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHILD = r"""
import csv, gzip, io, json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from daemon.intel import epss
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if sys.argv[2] == "parse":
    scores = epss.parse(data, sys.argv[1])
    rows = len(scores)
else:
    rows = sum(1 for _ in csv.reader(io.StringIO(gzip.decompress(data).decode()))) - 2
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": took, "extra_mb": (peak - before) / 1024, "rows": rows}))
"""


def write_file(path: Path, rows: int) -> None:
    rng = random.Random(14)
    lines = ["#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z", "cve,epss,percentile"]
    ids = sorted({(rng.randint(1999, 2026), rng.randint(1, 99_999)) for _ in range(rows * 2)})
    ids = ids[:rows]
    for n, (year, num) in enumerate(ids):
        score = min(1.0, rng.expovariate(60))
        lines.append(f"CVE-{year}-{num:04d},{score:.5f},{n / rows:.5f}")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), 6))


def measure(path: Path, mode: str) -> dict[str, float]:
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, root],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "epss_scores-2026-09-29.csv.gz"
        write_file(path, args.rows)
        floor = min((measure(path, "floor") for _ in range(3)), key=lambda m: m["seconds"])
        ours = min((measure(path, "parse") for _ in range(3)), key=lambda m: m["seconds"])
    assert ours["rows"] == args.rows, ours
    print(f"file: {args.rows} rows, {path.name}")
    print(f"reference (gunzip + csv reader, rows not kept): {floor['seconds']:.3f} s")
    print(f"epss.parse: {ours['seconds']:.3f} s (target < 2 s), "
          f"{ours['extra_mb']:.1f} MB above the process (target < 100 MB)")
    ok = ours["seconds"] < 2.0 and ours["extra_mb"] < 100
    print(f"{'PASS' if ok else 'FAIL'}: epss.parse / reference = "
          f"{ours['seconds'] / floor['seconds']:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
