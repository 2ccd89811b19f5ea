"""The feeds on real data and real HTTP: the KEV catalogs and schema of ../shared, the EPSS
sample file, the simulator's feed server (ETag, 304) and a server that answers 503."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daemon.config_types import Config, FeedConfig
from daemon.errors import FeedError, FeedInvalid
from daemon.intel import epss, fetch, kev
from daemon.intel.refresh import refresh
from daemon.store.db import open_store
from tests.store.store_helpers import REG, artifact, at, success

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kev_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "kev"


def test_the_bundled_schema_is_cisas(kev_dir: Path) -> None:
    bundled = json.loads((REPO / "daemon" / "intel" / "kev-schema.json").read_text())
    assert bundled == json.loads((kev_dir / "kev-schema.json").read_text())


def test_three_real_catalogs_parse_and_differ_by_the_four_added_cves(kev_dir: Path) -> None:
    first = kev.parse((kev_dir / "kev-2025.08.18.json").read_bytes(), "a")
    last = kev.parse((kev_dir / "kev-2025.08.25.json").read_bytes(), "b")
    assert (first.version, len(first.entries), last.version, len(last.entries)) == (
        "2025.08.18", 1400, "2025.08.25", 1404)
    change = kev.delta(first, last)
    assert [e.cve for e in change.added] == ["CVE-2024-8068", "CVE-2024-8069",
                                             "CVE-2025-43300", "CVE-2025-48384"]
    assert change.removed == ()
    git = last.entries["CVE-2025-48384"]
    assert (git.name, str(git.date_added), str(git.due_date), git.ransomware) == (
        "Git Link Following Vulnerability", "2025-08-25", "2025-09-15", False)
    assert kev.delta(None, last) == kev.KevDelta((), ())  # a first copy is a baseline
    # A removal, as CISA has done by deleting an entry outright:
    assert [e.cve for e in kev.delta(last, first).removed] == [e.cve for e in change.added]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["vulnerabilities"][3].update(dueDate="soon"), "at vulnerabilities/3/dueDate"),
    (lambda d: d["vulnerabilities"][0].pop("cveID"), "at vulnerabilities/0: 'cveID'"),
    (lambda d: d.pop("catalogVersion"), "at (top): 'catalogVersion' is a required"),
    (lambda d: d.update(count=7), "count says 7"),
], ids=["bad-date", "no-cve", "no-version", "wrong-count"])
def test_a_catalog_that_breaks_the_schema_is_refused_in_one_line(
        kev_dir: Path, edit: Any, message: str) -> None:
    doc = json.loads((kev_dir / "kev-2025.08.18.json").read_text())
    edit(doc)
    with pytest.raises(FeedInvalid) as caught:
        kev.parse(json.dumps(doc).encode(), "feed kev (https://example.org/kev.json)")
    text = str(caught.value)
    assert text.startswith("feed kev (https://example.org/kev.json): ") and "\n" not in text
    assert message in text


def test_the_real_epss_sample_parses(shared_dir: Path) -> None:
    data = (shared_dir / "fixtures" / "epss" / "epss_scores-sample.csv.gz").read_bytes()
    plain = (shared_dir / "fixtures" / "epss" / "epss_scores-sample.csv").read_bytes()
    scores = epss.parse(data, "sample")
    assert (scores.model_version, scores.score_date) == ("v2026.06.15", "2026-09-29T12:00:22Z")
    assert scores.get("CVE-1999-0001") == (0.03351, 0.88255)
    assert len(scores) == len(plain.decode().strip().splitlines()) - 2
    assert epss.parse(plain, "plain").index == scores.index


HEAD = "#model_version:v2026.06.15,score_date:2026-09-29T12:00:22Z\ncve,epss,percentile\n"


@pytest.mark.parametrize("body, message", [
    ("cve,score,pct\nCVE-2025-1,0.1,0.2\n", "header is ['cve', 'score', 'pct']"),
    (HEAD + "CVE-2025-0001,0.1,0.2\nCVE-2025-0002,1.5,0.2\n", "line 4: score or percentile"),
    (HEAD + "CVE-2025-0001,nan,0.2\n", "line 3: score or percentile"),
    (HEAD + "CVE-2025-0001,0.1,0.2\nGHSA-xxxx,0.1,0.2\n", "line 4: not a CVE id"),
    (HEAD + "CVE-2025-0001,0.1,0.2\nCVE-2025-0001,0.3,0.4\n", "line 4: CVE-2025-0001 appears"),
    (HEAD + "CVE-2025-0001,0.1\nCVE-2025-0002,0.1,0.2,9\n", "line 3: not cve,epss"),
    (HEAD + "CVE-2025-0001,x,0.2\n", "line 3: not cve,epss"),
    (HEAD, "no rows"),
], ids=["header", "range", "nan", "cve", "duplicate", "fields", "not-number", "empty"])
def test_a_bad_epss_file_is_refused_naming_the_line(body: str, message: str) -> None:
    with pytest.raises(FeedInvalid) as caught:
        epss.parse(gzip.compress(body.encode()), "feed epss")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_epss_crossings_need_a_baseline_and_a_rise_through_the_threshold() -> None:
    def scores(rows: dict[str, float]) -> epss.EpssScores:
        text = HEAD + "".join(f"{c},{s},{s}\n" for c, s in rows.items())
        return epss.parse(text.encode(), "x")

    before = scores({"CVE-2025-0001": 0.05, "CVE-2025-0002": 0.2, "CVE-2025-0003": 0.01})
    after = scores({"CVE-2025-0001": 0.12, "CVE-2025-0002": 0.3, "CVE-2025-0004": 0.5})
    cves = {"CVE-2025-0001", "CVE-2025-0002", "CVE-2025-0003", "CVE-2025-0004"}
    assert epss.crossings(None, after, cves, 0.1) == []
    assert epss.crossings(before, after, cves, 0.1) == ["CVE-2025-0001", "CVE-2025-0004"]
    assert epss.crossings(before, after, cves, 0.25, by_percentile=True) == [
        "CVE-2025-0002", "CVE-2025-0004"]


# --- fetching over real HTTP -------------------------------------------------------------


def feed_config(url: str, **kw: Any) -> FeedConfig:
    return FeedConfig(name=kw.pop("name", "kev"), url=url, timeout=timedelta(seconds=5), **kw)


def test_an_unchanged_feed_costs_one_304_and_no_body(make_sim: Any, kev_dir: Path) -> None:
    sim = make_sim(projects=1, feeds={"kev": str(kev_dir / "kev-2025.08.18.json")})
    feed = feed_config(f"{sim.url}/feeds/kev.json")
    first = asyncio.run(fetch.fetch(feed))
    assert first.body == (kev_dir / "kev-2025.08.18.json").read_bytes()
    assert first.etag and first.last_modified and first.requests == 1
    again = asyncio.run(fetch.fetch(feed, etag=first.etag, last_modified=first.last_modified))
    assert (again.body, again.requests) == (None, 1)
    by_date = asyncio.run(fetch.fetch(feed, last_modified=first.last_modified))
    assert by_date.body is None
    assert sim.state.feeds.state()["kev"]["answers"] == {"200": 1, "304": 2}


class _Flaky(ThreadingHTTPServer):
    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.seen = 0
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()


class _FlakyHandler(BaseHTTPRequestHandler):
    server: _Flaky
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        status, headers, body = self.server.answers[min(self.server.seen,
                                                        len(self.server.answers) - 1)]
        self.server.seen += 1
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_503_with_retry_after_is_waited_for_then_fetched() -> None:
    server = _Flaky([(503, {"Retry-After": "7"}, b"busy"), (200, {"ETag": '"v2"'}, b"{}")])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    try:
        got = asyncio.run(fetch.fetch(feed_config(f"http://127.0.0.1:{server.server_port}/k",
                                                  max_retries=2), sleep=sleep))
    finally:
        server.shutdown()
    assert (got.body, got.etag, got.requests, waits) == (b"{}", '"v2"', 2, [7.0])


def test_a_body_past_max_size_is_refused_not_retried() -> None:
    server = _Flaky([(200, {}, b"x" * 200_000)])
    try:
        with pytest.raises(FeedError, match="larger than max_size = 64 KiB"):
            asyncio.run(fetch.fetch(feed_config(f"http://127.0.0.1:{server.server_port}/k",
                                                max_size=64 * 1024)))
        assert server.seen == 1
    finally:
        server.shutdown()


# --- EPSS events without a rescan --------------------------------------------------------


def test_an_epss_score_crossing_the_threshold_is_one_exploit_likely_event(
        tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    path = tmp_path / "epss.csv.gz"
    feed = FeedConfig(name="epss", url=str(path), epss_threshold=0.1)
    config = Config(feeds=(feed,))
    now = datetime(2026, 3, 2, tzinfo=UTC)

    def publish(score: float, mtime: float) -> None:
        rows = f"CVE-2025-48384,{score},0.9\nCVE-2025-4802,0.5,0.99\n"
        path.write_bytes(gzip.compress((HEAD + rows).encode()))
        os.utime(path, (mtime, mtime))

    async def go() -> list[Any]:
        out = []
        for score, mtime in ((0.05, 1_000_000), (0.05, 1_000_000), (0.31, 2_000_000)):
            publish(score, mtime)
            out.append(await refresh(config, store, feed, now_fn=lambda: now,
                                     queue_alerts=False))
        return out

    try:
        store.record_inventory(REG, [artifact("sha256:a", "1.0")], at(0))
        store.record_scan(success("sha256:a", ["CVE-2025-48384:git:1:2.39.5-0+deb12u1",
                                               "CVE-2025-4802:libc6:2.36-9"], at(0)), at(0))
        results = asyncio.run(go())
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "h.db") as conn:
        likely = conn.execute(
            "SELECT f.vulnerability, e.reason, e.scan_id FROM finding_event e JOIN finding f "
            "ON f.id = e.finding_id WHERE e.kind = 'exploit_likely'").fetchall()
    assert [(r.outcome, r.events) for r in results] == [
        ("updated", 0), ("unchanged", 0), ("updated", 1)]
    assert likely == [("CVE-2025-48384", "epss_crossed", None)]  # no scan: nothing rescanned
