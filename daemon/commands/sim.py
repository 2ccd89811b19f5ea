"""``scanwatch sim serve``: a local Harbor v2.0 API to develop, test, demo and benchmark against."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from daemon.errors import UsageError


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    group = subparsers.add_parser("sim", parents=[common], help="run a simulated Harbor",
                                  description="A simulated Harbor registry (v2.0 API).")
    sub = group.add_subparsers(title="commands", metavar="COMMAND")
    group.set_defaults(group_parser=group)
    p = sub.add_parser(
        "serve", parents=[common], formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="serve a simulated Harbor on 127.0.0.1 until Ctrl-C",
        description="Serve a simulated Harbor v2.0 API on 127.0.0.1 until SIGINT/SIGTERM. The "
        "first line on stdout is its URL, once it answers /api/v2.0/ping; then one line per "
        "credential (user, then password). Control endpoints under /_sim/ push images, "
        "advance the scanner DB, set faults and read statistics.")
    p.add_argument("--seed", type=int, default=1,
                   help="seed: the same seed gives the same registry")
    p.add_argument("--projects", type=int, default=3, help="number of projects")
    p.add_argument("--repositories-per-project", type=int, default=3,
                   help="repositories in each project (the first one has a nested name, team/app)")
    p.add_argument("--artifacts-per-repository", type=int, default=3,
                   help="top-level artifacts in each repository")
    p.add_argument("--vulnerabilities-per-artifact", type=int, default=20,
                   help="about how many vulnerabilities a generated image carries")
    p.add_argument("--scanned-share", type=_share, default=0.5,
                   help="share of scannable artifacts already scanned (Success) at start")
    p.add_argument("--index-share", type=_share, default=0.1,
                   help="share of artifacts that are multi-platform image indexes")
    p.add_argument("--chart-share", type=_share, default=0.1,
                   help="share of artifacts that are Helm charts (not scannable)")
    p.add_argument("--cnab-share", type=_share, default=0.0,
                   help="share of artifacts that are CNAB bundles (not scannable)")
    p.add_argument("--scan-seconds", type=float, default=2.0,
                   help="how long the adapter takes per scan (fractions allowed)")
    p.add_argument("--scanner-concurrency", type=int, default=1,
                   help="scans the Trivy adapter runs at once")
    p.add_argument("--job-workers", type=int, default=10,
                   help="job service workers (each holds one scan job while it runs)")
    p.add_argument("--error-share", type=_share, default=0.0,
                   help="share of triggered scans that end in Error (with a log saying why)")
    p.add_argument("--harbor-version", default="v2.14.0",
                   help="version reported by /systeminfo; before v2.12 there is no "
                   "/projects/{p}/artifacts")
    p.add_argument("--trivy-reports", metavar="DIR", default=None,
                   help="take vulnerabilities from the real Trivy JSON reports in DIR instead of "
                   "the seeded generator")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--admin-password", default="Harbor12345", help="password of the user admin")
    p.add_argument("--login-freeze", type=float, default=1.5, metavar="SECONDS",
                   help="as Harbor: a failed login sleeps this long and locks the user name for "
                   "as long (meanwhile even its right password is anonymous)")
    p.add_argument("--webhook-retry-delay", type=float, default=3.0, metavar="SECONDS",
                   help="seconds between the three attempts to deliver a webhook event")
    p.add_argument("--webhook-drop-share", type=_share, default=0.0,
                   help="share of webhook events lost without being sent (as Harbor loses them)")
    p.add_argument("--base-images", type=int, default=0, choices=(0, 1, 2),
                   help="base images in a `base` project (debian, then alpine) that the "
                   "application images are built on (default 0: every image on an external base; "
                   "1 or 2 rehearse the rebuild advice)")
    p.add_argument("--base-tags", type=int, default=2,
                   help="tags of each base image, a newer one fixing CVEs of the older; push "
                   "a newer one with POST /_sim/push {\"project\": \"base\", "
                   "\"repository\": \"debian\"}")
    p.add_argument("--base-platforms", type=int, default=1, choices=(1, 2, 3),
                   help="platforms of each base tag (default 1: one linux/amd64 image; 2 or 3: "
                   "a multi-arch image index, amd64, arm64 and arm/v7, as Docker Hub's debian)")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a fault, repeatable: KIND[,rate=R][,path=GLOB][,method=M]"
                   "[,delay=S][,retry_after=S][,retry_after_date=true]; KIND is one of 500, 502, "
                   "503, 429, reset, slow, malformed, truncated (e.g. 503,rate=0.1,"
                   "path=/api/v2.0/projects/*)")
    p.add_argument("--kev", metavar="FILE", default=None,
                   help="serve this KEV catalog at /feeds/kev.json (with ETag; swap it with "
                   "POST /_sim/feeds)")
    p.add_argument("--epss", metavar="FILE", default=None,
                   help="serve this EPSS file at /feeds/epss.csv.gz")
    p.add_argument("--scanner-skip-update-pulltime", action="store_true",
                   help="as Harbor's 'Retain image last pull time on scanning': the scanner's "
                   "pulls set no pull time (by default they do, as Harbor's do; every GET of a "
                   "manifest through /v2/ is a pull)")
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from daemon import log
    from daemon.sim import FaultRule, SimOptions, start_simulator

    try:
        faults = tuple(FaultRule.parse(spec) for spec in args.fault)
        options = SimOptions(
            seed=args.seed, projects=args.projects,
            repositories_per_project=args.repositories_per_project,
            artifacts_per_repository=args.artifacts_per_repository,
            vulnerabilities_per_artifact=args.vulnerabilities_per_artifact,
            scanned_share=args.scanned_share, index_share=args.index_share,
            chart_share=args.chart_share, cnab_share=args.cnab_share,
            scan_seconds=args.scan_seconds, scanner_concurrency=args.scanner_concurrency,
            job_workers=args.job_workers, error_share=args.error_share,
            harbor_version=args.harbor_version, trivy_reports=args.trivy_reports,
            port=args.port, admin_password=args.admin_password,
            login_freeze=args.login_freeze, webhook_retry_delay=args.webhook_retry_delay,
            webhook_drop_share=args.webhook_drop_share, faults=faults,
            base_images=args.base_images, base_tags=args.base_tags,
            base_platforms=args.base_platforms,
            scanner_skip_update_pulltime=args.scanner_skip_update_pulltime,
            feeds={k: v for k, v in (("kev", args.kev), ("epss", args.epss)) if v})
    except ValueError as exc:
        raise UsageError(f"sim serve: {exc}") from None
    logger = log.get(__name__)
    done = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sim = start_simulator(options)
    except OSError as exc:
        raise UsageError(f"sim serve: cannot listen on 127.0.0.1:{args.port} ({exc})") from None
    try:
        counts = sim.control.inventory()
        print(sim.url, flush=True)
        print(f"{sim.admin[0]} {sim.admin[1]}", flush=True)
        for name, secret in sim.robots.values():
            print(f"{name} {secret}", flush=True)
        logger.info("sim_started", url=sim.url, projects=counts["projects"],
                    repositories=counts["repositories"], artifacts=counts["artifacts"],
                    scanned=counts["scanned"])
        while not done.wait(0.5):
            pass
    finally:
        sim.stop()
        logger.info("sim_stopped")
    sys.stdout.flush()
    return 0
