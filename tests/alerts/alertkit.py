"""Factories for alert tests: change events, configs and a fixed clock (imported by tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.config_types import Config, ReceiverConfig, RegistryConfig, RouteConfig, Secret
from daemon.model import ChangeEvent, ChangeKind, FindingKey, Reason, Severity  # noqa: F401

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def event(
    vuln: str = "CVE-2024-0001",
    package: str = "openssl",
    *,
    kind: ChangeKind = ChangeKind.NEW,
    reason: Reason = Reason.NEW_IMAGE,
    severity: Severity = Severity.HIGH,
    registry: str = "prod-harbor",
    project: str = "payments",
    repository: str = "api",
    installed: str = "3.0.13-1~deb12u1",
    fix: str = "3.0.15-1~deb12u1",
    previous: Severity | None = None,
    tags: tuple[str, ...] = ("1.4.2",),
    digests: tuple[str, ...] = ("sha256:" + "a" * 64,),
    at: datetime = NOW - timedelta(minutes=5),
    ignored: bool = False,
    cvss: tuple[float, str] | None = None,
) -> ChangeEvent:
    score, vector = cvss if cvss is not None else (None, "")
    return ChangeEvent(kind, reason, FindingKey(registry, project, repository, vuln, package),
                       severity, at, installed, fix, previous, digests, tags, ignored,
                       cvss_v3=score, cvss_vector=vector)


def first_sight(repository: str = "brandnew", count: int = 20, *,
                severity: Severity = Severity.CRITICAL, project: str = "library",
                registry: str = "prod-harbor", digest: str = "sha256:" + "f" * 64,
                at: datetime = NOW - timedelta(minutes=5)) -> ChangeEvent:
    """A first-sight summary as history records it: no vulnerability or package, ``count``
    findings, the highest severity."""
    return ChangeEvent(ChangeKind.NEW, Reason.FIRST_SIGHT,
                       FindingKey(registry, project, repository, "", ""), severity, at,
                       digests=(digest,), count=count)


def config(*routes: RouteConfig, receivers: tuple[ReceiverConfig, ...] | None = None,
           **kw: Any) -> Config:
    names = {r for route in routes for r in (*route.receivers, *route.escalate_to)}
    if receivers is None:
        receivers = tuple(ReceiverConfig(n, (Secret(f"json://127.0.0.1:1/{n}", "literal"),))
                          for n in sorted(names))
    registries = (RegistryConfig("prod-harbor", "https://harbor.example.com", "robot",
                                 Secret("pw", "literal")),)
    return Config(registries=kw.pop("registries", registries), receivers=receivers,
                  routes=routes, **kw)


def sample_items() -> list[Any]:
    """A run's worth of items: one fixable package in four images, one without a fix, a fix
    release, two fixed findings, an overdue finding and a failed scan."""
    from daemon.alerts.events import OverdueFinding, ScanProblem

    d = "sha256:" + "b" * 64
    critical = (9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    items: list[Any] = [
        event("CVE-2024-0001", severity=Severity.CRITICAL, cvss=critical),
        event("CVE-2024-0002", severity=Severity.HIGH, fix="3.0.14-1~deb12u1",
              cvss=(7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H")),
        event("CVE-2024-0001", severity=Severity.CRITICAL, tags=("latest",), cvss=critical),
        event("CVE-2024-0001", severity=Severity.CRITICAL, project="web", repository="front",
              tags=("2.0",), digests=(d,), cvss=critical),
        event("CVE-2024-0001", severity=Severity.CRITICAL, project="web", repository="admin",
              tags=(), digests=("sha256:" + "c" * 64,), cvss=critical),
        event("CVE-2025-1000", "glibc", severity=Severity.HIGH, installed="2.36-9+deb12u4",
              fix=""),
        event("CVE-2024-5555", "zlib", kind=ChangeKind.FIX_AVAILABLE, reason=Reason.FIX_RELEASED,
              severity=Severity.HIGH, installed="1:1.2.13.dfsg-1", fix="1:1.2.13.dfsg-1+deb12u1"),
        event("CVE-2023-1111", "curl", kind=ChangeKind.FIXED, reason=Reason.FIXED_BY_REBUILD),
        event("CVE-2023-2222", "curl", kind=ChangeKind.FIXED, reason=Reason.IMAGE_REMOVED,
              repository="old"),
        OverdueFinding(FindingKey("prod-harbor", "payments", "api", "CVE-2024-0777", "libxml2"),
                       Severity.CRITICAL, NOW - timedelta(days=12), timedelta(days=7),
                       tags=("1.4.2",)),
        ScanProblem("scan_failed", "prod-harbor", "web", "front", d, ("2.0",),
                    "scanner timed out after 600s"),
    ]
    return items


def hostile_items() -> list[Any]:
    """Scan data written by an attacker: Slack markup, HTML, 50 KB strings, non-ASCII."""
    from daemon.alerts.events import ScanProblem

    big = "A<b>&" * 10_000
    return [
        event("CVE-2024-<@U123>", "<!channel>", severity=Severity.CRITICAL,
              repository="<https://evil|click>", tags=("<!here>", "ünïcødé-标签"),
              installed="1.0<script>", fix="1.1&amp;", cvss=(9.8, "CVSS:3.1/<!channel>")),
        event("CVE-2024-0003", big, severity=Severity.HIGH, fix="", tags=(big,)),
        ScanProblem("scan_failed", "prod-harbor", "payments", "<@U999>", "sha256:x", ("t",),
                    "description <@U123> and <https://evil|click> " + big + " ✓ naïve"),
    ]


class HookServer:
    """A real HTTP server on 127.0.0.1 answering scripted responses and recording requests.

    ``script`` is a list of (status, headers, body); after it runs out it answers 200 "ok".
    """

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.script = list(script or [])
        self.requests: list[tuple[str, bytes]] = []
        self.headers: list[dict[str, str]] = []  # each request's headers, in order
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                outer.headers.append(dict(self.headers.items()))
                outer.requests.append((self.path, self.rfile.read(length)))
                status, headers, body = outer.script.pop(0) if outer.script else (200, {}, b"ok")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def json_bodies(self) -> list[Any]:
        import json
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def seeded_store(url: str, *, new_cves: int = 2) -> Any:
    """A real store: a first sight of payments/api, then a rescan that brings ``new_cves`` new
    findings (advisory_published) and a failed scan of another image."""
    from daemon.store.db import open_store
    from tests.store.store_helpers import REG, artifact, at, failure, success

    store = open_store(url)
    store.record_inventory(REG, [artifact("sha256:a", "1.0"), artifact("sha256:b", "2.0")], at(0))
    store.record_scans([success("sha256:a", ["CVE-2020-0001:zlib:1.0:1.1:High"], at(0))], at(0))
    specs = ["CVE-2020-0001:zlib:1.0:1.1:High"] + [
        f"CVE-2026-{n:04d}:openssl:3.0.1:3.0.{n + 2}:Critical" for n in range(new_cves)]
    store.record_scans([success("sha256:a", specs, at(1))], at(1))
    store.record_scans([failure("sha256:b", at(1))], at(1))
    return store


def sim_config(sim: Any, registry: dict[str, Any] | None = None, **values: Any) -> Config:
    """A config for one registry, ``sim`` (a running simulator, as its admin), fast enough for
    tests (``registry`` overrides its settings), with ``values`` (schedules, receivers…)."""
    from daemon.config_types import DaemonConfig

    settings: dict[str, Any] = {"requests_per_second": 400.0, "burst": 50,
                                "max_concurrent_requests": 8, "max_scans_in_flight": 8,
                                **(registry or {})}
    reg = RegistryConfig(name="sim", url=sim.url, username=sim.admin[0],
                         password=Secret(sim.admin[1], "literal"), **settings)
    return Config(daemon=DaemonConfig(max_scans_in_flight=50), registries=(reg,), **values)


async def run_sim_schedule(config: Config, store: Any) -> Any:
    """The config's first schedule, run once against the simulator with fast polling."""
    from daemon.scan.queue import QueueOptions
    from daemon.scan.run import run_schedule

    fast = QueueOptions(poll_initial=0.05, poll_max=0.3, early_error_window=0.3)
    return await run_schedule(config, store, config.schedules[0], trigger="once",
                              now_fn=lambda: datetime.now(UTC), options=fast)
