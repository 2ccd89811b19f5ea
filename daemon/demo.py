"""`scanwatch demo`: what scanwatch is for, in under a minute, with nothing installed.

It starts the Harbor simulator in-process, writes a configuration for it, runs a first cycle
(the first sight of the registry), advances the simulator's scanner database and pushes a
rebuilt image and two images with Git, runs a second cycle, and shows the remediation alert
exactly as the Slack and email receivers are handed it. Then CISA's KEV catalog moves from
2025.08.21 to 2025.08.25, the version that added CVE-2025-48384 (Git): the simulator serves
the new version, scanwatch fetches it (a conditional request) and says, without a rescan,
which images now carry a known-exploited CVE and what to upgrade. Everything it writes goes
under one directory it names.

The catalog is ``daemon/sim/data/kev-excerpt-2025.08.25.json``: six real entries of CISA's
catalog version 2025.08.25 (CC0), unchanged, with ``count`` saying six; the 2025.08.21 version
served first is the same without the three entries that version 2025.08.25 added.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from daemon.errors import UsageError
from daemon.model import SEVERITY_LABELS

if TYPE_CHECKING:
    from daemon.store.db import Store

PASSWORD_ENV = "SCANWATCH_DEMO_PASSWORD"
SLACK_URL = "slack://T0DEMO/B0DEMO/demotoken/#security"
MAIL_URL = "mailto://scanwatch@127.0.0.1?to=secops@example.org&from=scanwatch@example.org"

CONFIG = """\
# Written by `scanwatch demo` for its simulated Harbor. Try, for instance:
#   {password_env}={password} scanwatch findings --config {config}
#   {password_env}={password} scanwatch history demo-harbor/{project}/{repository} --config {config}
# (the simulator stopped when the demo ended, so commands that call Harbor need
#  `scanwatch sim serve` and this file's url changed to the one it prints).

[daemon]
database = "sqlite:///{database}"

[[registry]]
name = "demo-harbor"
url = "{url}"
username = "admin"
password = "${{{password_env}}}"
requests_per_second = 50
burst = 20
max_concurrent_requests = 4
max_scans_in_flight = 4

[[schedule]]
name = "nightly"
cron = "0 2 * * *"
registries = ["demo-harbor"]
select = ["changed", "unscanned", "failed", "db_updated", "stale"]

[[receiver]]
name = "secops-slack"
urls = ["{slack}"]

[[receiver]]
name = "secops-mail"
urls = ["{mail}"]

[[route]]
receivers = ["secops-slack", "secops-mail"]
min_severity = "Low"
events = ["new", "fix_available", "severity_up", "reopened", "scan_failed", "scanner_unavailable",
          "rebuild_available", "known_exploited"]

[[feed]]
name = "kev"
url = "{url}/feeds/kev.json"
max_retries = 0
"""

KEV_EXCERPT = "kev-excerpt-2025.08.25.json"
KEV_CVE = "CVE-2025-48384"
# Debian 12's git before DSA-5956, which fixed CVE-2025-48384 (and CVE-2025-48385) in
# 1:2.39.5-0+deb12u2: the image the demo pushes, as `trivy image --format json` reports it.
GIT_REPORT = {
    "SchemaVersion": 2, "ArtifactName": "demo/git-image", "ArtifactType": "container_image",
    "Metadata": {"OS": {"Family": "debian", "Name": "12.11"}},
    "Results": [{"Target": "demo/git-image (debian 12.11)", "Class": "os-pkgs", "Type": "debian",
                 "Vulnerabilities": [
                     {"VulnerabilityID": cve, "PkgName": "git",
                      "InstalledVersion": "1:2.39.5-0+deb12u1",
                      "FixedVersion": "1:2.39.5-0+deb12u2", "Status": "fixed",
                      "Severity": "HIGH",
                      "PrimaryURL": f"https://avd.aquasec.com/nvd/{cve.lower()}"}
                     for cve in ("CVE-2025-48384", "CVE-2025-48385")]}],
}



@dataclass
class Captured:
    """What a receiver is handed: the exact title and body apprise would send."""

    url: str
    title: str
    body: str
    body_format: str
    text: str = ""  # an email's plain-text part, as sent beside the HTML


@dataclass
class Demo:
    directory: Path
    out: TextIO = sys.stdout
    captured: list[Captured] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def capture(self, url: str, title: str, body: str, body_format: str,
                      *, text: str = "", **_: Any) -> Any:
        """The demo's sender: keeps what a receiver would be handed instead of sending it."""
        from daemon.alerts.deliver import SendOutcome

        self.captured.append(Captured(url, title, body, body_format, text))
        return SendOutcome(ok=True)


class ProgressLine:
    """A one-line live display of a cycle's scans on a terminal; plain lines otherwise."""

    def __init__(self, out: TextIO, label: str) -> None:
        self.out, self.label = out, label
        self.live = out.isatty()
        self.jobs: dict[int, Any] = {}
        self.reported: set[int] = set()

    def __call__(self, job: Any) -> None:
        self.jobs[id(job)] = job
        states = Counter(self._state(j) for j in self.jobs.values())
        text = f"{self.label}: {len(self.jobs)} scans: " + ", ".join(
            f"{n} {s}" for s, n in sorted(states.items()))
        if self.live:
            self.out.write("\r\x1b[2K" + text)
            self.out.flush()
        elif job.outcome and id(job) not in self.reported:
            self.reported.add(id(job))
            ref = job.artifact.ref
            self.out.write(f"  {ref.project}/{ref.repository}@{ref.digest[7:19]}: "
                           f"{job.outcome}\n")

    @staticmethod
    def _state(job: Any) -> str:
        if job.outcome:
            return str(job.outcome)
        overview = job.artifact.overview
        if overview is not None and overview.state.value == "Running":
            return "scanning"
        return "queued"

    def done(self) -> None:
        if self.live and self.jobs:
            self.out.write("\n")


def _severity_counts(rows: list[Any]) -> str:
    counts = Counter(r.severity.label for r in rows)
    return ", ".join(f"{counts[s]} {s}" for s in SEVERITY_LABELS if counts.get(s))




MARKER = ".scanwatch-demo"


def write_kev_versions(directory: Path) -> tuple[Path, Path]:
    """The two KEV catalog versions the simulator serves in turn: (2025.08.21, 2025.08.25)."""
    from importlib import resources

    after = directory / "kev-2025.08.25.json"
    text = resources.files("daemon.sim").joinpath("data", KEV_EXCERPT).read_text("utf-8")
    after.write_text(text, encoding="utf-8")
    catalog = json.loads(text)
    kept = [v for v in catalog["vulnerabilities"] if v["dateAdded"] < "2025-08-25"]
    before = directory / "kev-2025.08.21.json"
    before.write_text(json.dumps({
        **catalog, "catalogVersion": "2025.08.21", "dateReleased": "2025-08-21T17:02:19.8046Z",
        "count": len(kept), "vulnerabilities": kept}, indent=2), encoding="utf-8")
    return before, after


def prepare_directory(directory: Path) -> None:
    """Make ``directory`` the demo's, starting afresh; refuse any directory that is not.

    The demo deletes its previous database there, so it only ever works in a new or empty
    directory, or in one it made itself (its marker file): never in a real history's.
    """
    try:
        if directory.exists():
            if not directory.is_dir():
                raise UsageError(f"{directory}: not a directory")
            if any(directory.iterdir()) and not (directory / MARKER).is_file():
                raise UsageError(f"{directory}: not empty and not a scanwatch demo directory; "
                                 "choose a new or empty one with --dir")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MARKER).write_text("written by `scanwatch demo`; safe to delete\n")
        for stale in directory.glob("history.db*"):
            stale.unlink()
    except OSError as exc:
        raise UsageError(f"{directory}: cannot write the demo there: "
                         f"{exc.strerror or exc}") from exc


async def run_demo(demo: Demo) -> int:
    from daemon import config as config_module
    from daemon.commands._common import print_table
    from daemon.commands._harbor import status_of
    from daemon.service.cycle import deliver, run_cycle
    from daemon.sim import SimOptions, start_simulator
    from daemon.store.db import open_configured_store

    say = demo.say
    directory = demo.directory
    prepare_directory(directory)
    database = (directory / "history.db").resolve()
    say("scanwatch demo: a simulated Harbor, two scan cycles, and the alert they produce.")
    say(f"Everything is written under {directory}/.\n")
    kev_before, kev_after = write_kev_versions(directory)
    git_report = directory / "git-image.trivy.json"
    git_report.write_text(json.dumps(GIT_REPORT, indent=2), encoding="utf-8")
    options = SimOptions(seed=7, projects=3, repositories_per_project=2,
                         artifacts_per_repository=2, scanned_share=0.4, index_share=0.15,
                         chart_share=0.1, scan_seconds=0.4, scanner_concurrency=4,
                         vulnerabilities_per_artifact=25, port=0, base_images=1, base_tags=1,
                         base_platforms=2, feeds={"kev": str(kev_before)})
    with start_simulator(options) as sim:
        os.environ[PASSWORD_ENV] = sim.admin[1]
        inventory = sim.control.inventory()
        say(f"1. Started a simulated Harbor at {sim.url}: {inventory['projects']} projects, "
            f"{inventory['repositories']} repositories, {inventory['artifacts']} artifacts "
            f"({inventory['scanned']} already scanned, charts and image indexes among them).")
        config_path = directory / "config.toml"
        config_path.write_text(CONFIG.format(
            password_env=PASSWORD_ENV, password=sim.admin[1], config=config_path,
            project="<project>", repository="<repository>", database=database, url=sim.url,
            slack=SLACK_URL, mail=MAIL_URL))
        cfg = config_module.load(config_path, strict=True)
        schedule = cfg.schedules[0]
        store = open_configured_store(cfg)
        try:
            now = lambda: datetime.now(UTC)  # noqa: E731
            say(f"   Wrote {config_path} for it.\n")
            say("2. First cycle: walk the registry, import the reports Harbor already has, "
                "scan the rest.")
            progress = ProgressLine(demo.out, "   cycle 1")
            first = await run_cycle(cfg, store, schedule, trigger="demo", now_fn=now,
                                    on_progress=progress)
            progress.done()
            await deliver(cfg, store, now_fn=now, within=None, sender=demo.capture)
            demo.captured.clear()  # the first sight is a summary, not an alert per CVE
            reg = first.run.registries[0]
            say(f"   {reg.artifacts} artifacts, {reg.imported} reports imported, "
                f"{reg.triggered} scans triggered, {reg.not_supported} not supported.\n")
            rows = await _status_rows(cfg, status_of)
            say("   Status, as Harbor's UI names it:")
            print_table(("ARTIFACT", "STATUS", "DETAIL"),
                        [(r["artifact"], r["status"], r["detail"]) for r in rows],
                        indent="   ", out=demo.out)
            findings = store.open_findings()
            fixable = [f for f in findings if f.fix_version]
            say(f"\n   First sight: {len(findings)} open findings "
                f"({_severity_counts(findings)}); {len(fixable)} have a fix. History keeps "
                "them;\n   they are summarised once, not announced one by one as new.\n")
            from daemon.intel.refresh import refresh

            kev_feed = cfg.feed("kev")
            assert kev_feed is not None
            baseline = await refresh(cfg, store, kev_feed, now_fn=now)
            changes = sim.control.db_update()
            target = _rebuild_target(findings)
            pushed = sim.control.push(*target) if target else sim.control.push()
            base = sim.control.push("base", "debian")
            with_git = [sim.control.push(p, r, report=str(git_report))
                        for p, r in _git_targets(findings, target)]
            say("3. Meanwhile: the scanner's vulnerability database was updated "
                f"({len(changes['added'])} CVEs published, {len(changes['fix_released'])} "
                f"fixes released, {len(changes['rescored'])} rescored), "
                f"{pushed['repository']}:{pushed['tag']} was rebuilt and pushed "
                f"({pushed['digest'][:19]}…), and the team's base image, multi-arch (linux/amd64 "
                f"and linux/arm64), got a newer tag, {base['repository']}:{base['tag']}, with "
                "upgraded packages: scanwatch finds which images (each platform of an image "
                "index apart) are built on the old one (OCI annotations, else shared layers) "
                "and what rebuilding them fixes. And "
                + ", ".join(f"{g['repository']}:{g['tag']}" for g in with_git)
                + " came with Debian's git 1:2.39.5-0+deb12u1 (CVE-2025-48384, not known "
                f"exploited yet: scanwatch keeps CISA's KEV catalog {baseline.version}).\n")
            say("4. Second cycle: the rebuilt image is scanned first, then every image the DB "
                "update may touch.")
            progress = ProgressLine(demo.out, "   cycle 2")
            second = await run_cycle(cfg, store, schedule, trigger="demo", now_fn=now,
                                     on_progress=progress)
            progress.done()
            report = await deliver(cfg, store, now_fn=now, within=None, sender=demo.capture)
            reg = second.run.registries[0]
            say(f"   {reg.triggered} scans, {second.run.changes} changes recorded, "
                f"{report.sent} alert messages delivered.\n")
            _show_alerts(demo)
            await _kev_step(demo, cfg, store, sim, kev_feed, kev_after, now)
        finally:
            store.close()
    say("Next: `scanwatch config init /etc/scanwatch/config.toml` for your own Harbor, "
        "`scanwatch sim serve` to keep a simulator running, and README.md for systemd.")
    return 0


async def _status_rows(cfg: Any, status_of: Any) -> list[dict[str, Any]]:
    from daemon.harbor.client import HarborClient
    from daemon.harbor.inventory import walk

    registry = cfg.registries[0]
    async with HarborClient(registry) as client:
        inventory = await walk(client, registry)
    rows = [status_of(a) for a in inventory.artifacts()]
    return sorted(rows, key=lambda r: r["artifact"])


def _rebuild_target(findings: list[Any]) -> tuple[str, str, str] | None:
    for row in sorted(findings, key=lambda f: (-int(f.severity), f.key.repository)):
        if row.tags:
            return (row.key.project, row.key.repository, sorted(row.tags)[0])
    return None


def _git_targets(findings: list[Any], rebuilt: tuple[str, str, str] | None
                 ) -> list[tuple[str, str]]:
    """Two application repositories (not the base images', not the rebuilt one) that get an
    image with git."""
    skip = rebuilt[:2] if rebuilt else None
    repos = sorted({(f.key.project, f.key.repository) for f in findings
                    if f.tags and f.key.project != "base"} - ({skip} if skip else set()))
    return repos[:2]


async def _kev_step(demo: Demo, cfg: Any, store: Store, sim: Any, feed: Any, after: Path,
                    now: Any) -> None:
    """CISA publishes KEV 2025.08.25: one fetch, and the known_exploited alert it raises."""
    from daemon.intel.refresh import refresh

    say = demo.say
    demo.captured.clear()
    sim.state.feeds.swap("kev", str(after))
    result = await refresh(cfg, store, feed, now_fn=now)
    from daemon.service.cycle import deliver

    await deliver(cfg, store, now_fn=now, within=None, sender=demo.capture)
    say(f"6. CISA published KEV catalog {result.version}, which adds {KEV_CVE} (Git). "
        f"scanwatch fetched it ({result.requests} conditional request) and matched it to the "
        f"findings it holds, without a rescan: {result.events} known_exploited event(s).")
    slack = [c for c in demo.captured if c.url.startswith("slack")]
    if not slack:
        say("   No alert: no image carries it.\n")
        return
    path = demo.directory / "alert-kev-slack.txt"
    path.write_text(slack[0].body)
    say("   The alert, as the Slack receiver gets it:\n")
    say(slack[0].body)
    say(f"   Written to: {path}\n")


def _show_alerts(demo: Demo) -> None:
    from daemon.alerts.deliver import email_text_part

    slack = [c for c in demo.captured if c.url.startswith("slack")]
    mail = [c for c in demo.captured if c.url.startswith("mailto")]
    if not slack and not mail:
        demo.say("5. No alert: nothing this route cares about changed.")
        return
    files = []
    if slack:
        path = demo.directory / "alert-slack.txt"
        path.write_text("\n\n".join(c.body for c in slack))
        files.append(path)
        demo.say("5. The alert, as the Slack receiver gets it (mrkdwn):\n")
        demo.say(slack[0].body)
    if mail:
        html = demo.directory / "alert-email.html"
        text = demo.directory / "alert-email.txt"
        html.write_text(mail[0].body)
        plain = mail[0].text or email_text_part(mail[0].body)
        text.write_text(f"Subject: {mail[0].title}\n\n{plain}")
        files += [text, html]
        demo.say(f"   And as email: subject \"{mail[0].title}\", with a plain-text and an HTML "
                 "part.")
    demo.say("   Written to: " + ", ".join(str(p) for p in files) + "\n")


def main(directory: Path, out: TextIO = sys.stdout) -> int:
    return asyncio.run(run_demo(Demo(directory, out)))
