"""Pages per second the simulator serves: artifact lists of 100 with scan overviews, 4 concurrent
clients, against a bare stdlib HTTP server returning a fixed body of the same size (ratio last).

    .venv/bin/python bench/sim.py [--seconds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from daemon.sim import SimOptions, start_simulator


def hammer(url: str, path: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def run(n: int) -> None:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            counts[n] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def bare_server(body: bytes) -> ThreadingHTTPServer:
    class Fixed(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Fixed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    import base64

    with start_simulator(SimOptions(seed=1, projects=2, repositories_per_project=10,
                                    artifacts_per_repository=30, scanned_share=0.8)) as sim:
        project = next(iter(sim.robots))
        token = base64.b64encode(f"{sim.admin[0]}:{sim.admin[1]}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "X-Accept-Vulnerabilities":
                   "application/vnd.security.vulnerability.report; version=1.1, "
                   "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"}
        pages = [f"/api/v2.0/projects/{project}/artifacts?page={n}&page_size=100"
                 "&with_scan_overview=true" for n in (1, 2, 3)]
        parts = urlsplit(sim.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        conn.request("GET", pages[0], headers=headers)
        body = conn.getresponse().read()
        conn.close()
        sim_rate = hammer(sim.url, pages[0], headers, args.clients, args.seconds)
        bare = bare_server(body)
        try:
            bare_rate = hammer(f"http://127.0.0.1:{bare.server_address[1]}", "/", {},
                               args.clients, args.seconds)
        finally:
            bare.shutdown()
            bare.server_close()
    print(f"page size: {len(body)} bytes (100 artifacts with scan overviews), "
          f"{args.clients} clients, {args.seconds:.0f} s each")
    print(f"simulator:   {sim_rate:8.1f} pages/s")
    print(f"bare server: {bare_rate:8.1f} pages/s")
    print(f"ratio simulator/bare: {sim_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
