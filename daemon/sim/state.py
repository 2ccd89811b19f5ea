"""Everything the simulator knows, behind one lock, and the control operations on it.

:class:`Control` is what ``/_sim/`` drives over HTTP and what tests call in-process.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from daemon.errors import UsageError
from daemon.sim import lineage as sim_lineage
from daemon.sim.auth import Authenticator, robot_name
from daemon.sim.engine import ScanEngine
from daemon.sim.faults import Faults
from daemon.sim.feeds import Feeds
from daemon.sim.inventory import Artifact, Inventory, Project
from daemon.sim.options import FaultRule, SimOptions
from daemon.sim.render import overview
from daemon.sim.scanall import ScanAll, run_now_state
from daemon.sim.stats import Stats
from daemon.sim.trivy import load_dir
from daemon.sim.vulndb import VulnDB, stable_seed
from daemon.sim.webhooks import Webhooks, payload

SCANNER_UUID = "2d1f3c0e-5b8a-11ee-8c99-0242ac120002"


class SimState:
    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.lock = threading.RLock()
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self.db = VulnDB(options.seed)
        reports = load_dir(Path(options.trivy_reports)) if options.trivy_reports else []
        for report in reports:
            self.db.load(report.items)
        self.inventory = Inventory(options, self.db, reports, self.wall())
        self.db_updated_at = self.wall() - 2 * 86400
        self.version = 0  # bumped on every change: cached pages are keyed on it
        self.engine = ScanEngine(options, self.inventory, self.lock, self.wall, self.bump)
        self.faults = Faults(options.seed, options.faults)
        self.stats = Stats()
        self.rng = random.Random(stable_seed(options.seed, "control"))
        self.page_cache: dict[Any, tuple[int, Any]] = {}
        self.fragment_cache: dict[Any, tuple[int, bytes]] = {}
        self.fetches = 0
        self.scanner_registered = True
        self.scanner_disabled = False
        self.system_allowlist: tuple[str, ...] = ()
        self.system_allowlist_expires_at: float | None = None
        self.auth = Authenticator(options.admin_password, self.wall, options.login_freeze)
        self.webhooks = Webhooks(stable_seed(options.seed, "webhooks"), self.wall,
                                 options.webhook_retry_delay, options.webhook_drop_share)
        self.engine.on_scan_end = self._scan_ended
        self.engine.on_pull = self.pulled
        self.scan_all = ScanAll()
        self.registry_host = f"{options.host}:{options.port}"  # set to the bound address
        self.tokens: dict[str, tuple[Any, frozenset[str], float]] = {}  # /service/token's
        self.feeds = Feeds(options.feeds)

    def _scan_ended(self, art: Artifact, scan: Any) -> None:
        kind = {"Success": "SCANNING_COMPLETED", "Error": "SCANNING_FAILED",
                "Stopped": "SCANNING_STOPPED"}.get(scan.status)
        if kind is not None:
            self.webhooks.notify(kind, art.project, payload(
                kind, art, self.wall(), operator="auto",
                overview=None if scan.by_scan_all else overview(art)))

    def wall(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0)

    def pulled(self, art: Artifact, tag: str = "") -> None:
        """A pull of ``art`` now (by ``tag`` when it was asked by tag), as Harbor's internal
        artifact handler records it (``src/controller/event/handler/internal/artifact.go``
        ``onPull``; ``Artifact.record_pull``). Harbor fires the event for every ``GET`` of a
        manifest through ``/v2/`` but a ``HEAD`` or its own replication client's; its
        scanner's pulls count too unless ``scanner_skip_update_pulltime`` is set. Harbor
        writes the time ten seconds later by default (``ARTIFACT_PULL_ASYNC_FLUSH_DURATION``);
        here at once."""
        with self.lock:
            art.record_pull(self.wall(), tag)
            art.touch()
            self.bump()

    def bump(self) -> None:
        self.version += 1


class Control:
    """The simulator's knobs: push, advance the scanner DB, faults, adapter, counts, statistics."""

    def __init__(self, state: SimState) -> None:
        self._s = state

    def push(self, project: str | None = None, repository: str | None = None,
             tag: str | None = None, base: str | None = None,
             report: str | None = None) -> dict[str, Any]:
        """A new artifact: into an existing repository with a new tag, or (given a tag) that
        tag moved onto a rebuilt image with a new digest; ``base`` (``base/debian:12.7``)
        rebuilds it on that base image; ``report`` (the file name of a loaded Trivy report,
        or the path of a Trivy JSON file, loaded then) makes it carry that report's packages
        and vulnerabilities."""
        s = self._s
        with s.lock:
            inv = s.inventory
            chosen = self._report(report) if report is not None else None
            on = None
            if base is not None:
                name, _, ref = base.rpartition(":") if "@" not in base else base.partition("@")
                bproject = inv.project(name.split("/", 1)[0], by_id=False)
                brepo = inv.repository(bproject, name.split("/", 1)[-1]) if bproject else None
                on = inv.artifact(brepo, ref) if brepo is not None else None
                if on is None:
                    raise UsageError(f"no base image {base!r}")
            if project is None:
                target = inv.projects[s.rng.randrange(len(inv.projects))]
            else:
                found = inv.project(project, by_id=False)
                if found is None:
                    raise UsageError(f"no project {project!r}")
                target = found
            short = repository
            if short is not None and short.startswith(f"{target.name}/"):
                short = short[len(target.name) + 1:]
            art = inv.push(target, short, tag, s.wall(), on, chosen)
            s.bump()
            s.webhooks.notify("PUSH_ARTIFACT", target,
                              payload("PUSH_ARTIFACT", art, s.wall()))
            return {"project": target.name, "repository": art.repo.name, "digest": art.digest,
                    "tag": art.tags[0].name if art.tags else None}

    def set_allowlist(self, project: str | None = None, cve_ids: Iterable[str] = (),
                      expires_at: float | None = None,
                      reuse_system: bool | None = None) -> dict[str, Any]:
        """Set the system CVE allowlist (no project) or a project's, as an admin would in the UI.

        ``expires_at`` (Unix seconds) applies to the whole list; ``reuse_system`` sets the
        project's ``reuse_sys_cve_allowlist``.
        """
        s = self._s
        ids = tuple(dict.fromkeys(str(c) for c in cve_ids))
        if any(not c for c in ids):
            raise UsageError("empty CVE id in the allowlist")
        with s.lock:
            if project is None:
                s.system_allowlist, s.system_allowlist_expires_at = ids, expires_at
            else:
                found = s.inventory.project(project, by_id=False)
                if found is None:
                    raise UsageError(f"no project {project!r}")
                found.allowlist, found.allowlist_expires_at = ids, expires_at
                if reuse_system is not None:
                    found.reuse_system_allowlist = bool(reuse_system)
            s.bump()
        return {"project": project, "cve_ids": list(ids), "expires_at": expires_at}

    def set_project(self, project: str, *, public: bool | None = None) -> dict[str, Any]:
        """Make a project public (anonymous callers, a failed login among them, see it) or
        private again."""
        s = self._s
        with s.lock:
            found = self._project(project)
            if public is not None:
                found.public = bool(public)
            s.bump()
            return {"project": found.name, "public": found.public}

    def set_robot(self, project: str, *, expires_at: float | None = None,
                  expired: bool | None = None, disabled: bool | None = None,
                  pull: bool | None = None, may_list_robots: bool | None = None
                  ) -> dict[str, Any]:
        """A project robot's expiry (Unix seconds, -1 never; ``expired`` = now) or disabling:
        Harbor then treats its requests as anonymous. ``pull`` false takes the robot's
        ``repository:pull`` permission away (a robot made with list, read and scan only): its
        pull tokens then open nothing. ``may_list_robots``: its ``robot:list`` permission (with
        it, ``GET /robots`` shows the robot its own record)."""
        s = self._s
        with s.lock:
            found = self._project(project)
            if expired:
                found.robot_expires_at = s.wall()
            elif expired is False:
                found.robot_expires_at = -1
            if expires_at is not None:
                found.robot_expires_at = float(expires_at)
            if disabled is not None:
                found.robot_disabled = bool(disabled)
            if pull is not None:
                found.robot_can_pull = bool(pull)
            if may_list_robots is not None:
                found.robot_may_list = bool(may_list_robots)
            return {"project": found.name, "robot": robot_name(found),
                    "expires_at": found.robot_expires_at, "disabled": found.robot_disabled,
                    "pull": found.robot_can_pull, "may_list_robots": found.robot_may_list}

    def delete(self, project: str, repository: str, reference: str) -> dict[str, Any]:
        """Delete an artifact as ``DELETE …/artifacts/{reference}`` does (index children too)."""
        s = self._s
        with s.lock:
            found = self._project(project)
            short = repository.removeprefix(f"{found.name}/")
            repo = s.inventory.repository(found, short)
            art = s.inventory.artifact(repo, reference) if repo is not None else None
            if art is None:
                raise UsageError(f"no artifact {found.name}/{short}:{reference}")
            if art.parents:
                raise UsageError(f"{art.digest} is referenced by an index")
            gone = s.inventory.delete(art)
            s.bump()
            return {"deleted": [a.digest for a in gone]}

    def auth(self) -> dict[str, Any]:
        """User names locked out by a failed login right now (Harbor's 1.5 s lock)."""
        return {"locked": self._s.auth.locked_users()}

    def _project(self, name: str) -> Project:
        found = self._s.inventory.project(name, by_id=False)
        if found is None:
            raise UsageError(f"no project {name!r}")
        return found

    def _report(self, name: str) -> Any:
        s = self._s
        found = next((r for r in s.inventory.reports if r.name == name), None)
        if found is None:
            from daemon.sim.trivy import load_file

            path = Path(name)
            if not path.is_file():
                raise UsageError(f"no Trivy report {name!r}: neither a loaded report's file "
                                 "name nor a file")
            found = load_file(path)
            s.db.load(found.items)
        return found

    def db_update(self, added: float = 0.05, fix_released: float = 0.1,
                  rescored: float = 0.05) -> dict[str, Any]:
        """Advance the scanner DB; reports change only when their artifact is rescanned."""
        s = self._s
        with s.lock:
            in_use: dict[tuple[str, str], set[str]] = {}
            for art in s.inventory.all_artifacts():
                if art.type == "IMAGE" and not art.children:
                    for pkg in art.packages:
                        in_use.setdefault(pkg, set()).add(art.repo.name)
            changes = s.db.update(in_use, added=added, fix_released=fix_released,
                                  rescored=rescored, rng=s.rng)
            s.db_updated_at = max(s.wall(), s.engine.last_scan_end + 0.001,
                                  s.db_updated_at + 0.001)
            s.bump()
            from daemon.sim.render import ts
            return {**changes, "db_updated_at": ts(s.db_updated_at)}

    def set_faults(self, faults: Iterable[FaultRule | dict[str, Any]]) -> None:
        rules = [f if isinstance(f, FaultRule) else FaultRule.from_json(f) for f in faults]
        self._s.faults.set(rules)

    def faults(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._s.faults.rules]

    def set_adapter(self, up: bool) -> None:
        s = self._s
        with s.lock:
            s.engine.set_adapter(up)
            for art in s.inventory.all_artifacts():
                art.touch()
            s.bump()

    def set_scanner(self, *, registered: bool | None = None, disabled: bool | None = None) -> None:
        """No scanner at all, or a disabled one: scan triggers then get 412."""
        s = self._s
        with s.lock:
            if registered is not None:
                s.scanner_registered = registered
            if disabled is not None:
                s.scanner_disabled = disabled
            s.bump()

    def adapter_up(self) -> bool:
        return self._s.engine.adapter_up

    def inventory(self) -> dict[str, Any]:
        s = self._s
        with s.lock:
            per: dict[str, dict[str, int]] = {}
            totals = {"projects": 0, "repositories": 0, "artifacts": 0, "scannable": 0,
                      "scanned": 0}
            for project in s.inventory.projects:
                tops = [a for r in project.repositories for a in r.top_level()]
                scanned = sum(1 for a in tops if _succeeded(a))
                per[project.name] = {"repositories": len(project.repositories),
                                     "artifacts": len(tops), "scanned": scanned}
                totals["projects"] += 1
                totals["repositories"] += len(project.repositories)
                totals["artifacts"] += len(tops)
                totals["scannable"] += sum(1 for a in tops if a.type == "IMAGE")
                totals["scanned"] += scanned
            return {**totals, "per_project": per}

    def lineage(self) -> list[dict[str, Any]]:
        """What each image was built on (the ground truth lineage is checked against): every
        image, an index's children included (each with its ``index`` and ``platform``)."""
        with self._s.lock:
            return [{**sim_lineage.truth(a), "scanned": _succeeded(a)}
                    for a in self._s.inventory.all_artifacts() if a.layers and not a.children]

    def stats(self) -> dict[str, Any]:
        return self._s.stats.snapshot()

    def reset_stats(self) -> None:
        self._s.stats.reset()
        self._s.engine.reset_queue_stats()

    def scanner(self) -> dict[str, Any]:
        """The adapter's load now and since the last reset: scans queued for it (Pending, or
        holding a job worker while the adapter is busy), scanning, and the peak queue."""
        engine = self._s.engine
        with self._s.lock:
            return {"queued": len(engine.pending) + len(engine.waiting),
                    "scanning": len(engine.active), "peak_queued": engine.peak_queued,
                    "workers": self._s.options.scanner_concurrency,
                    "finished": engine.finished}

    def scan_all(self) -> dict[str, Any]:
        """Harbor's manual Scan All: every top-level artifact triggered at once."""
        with self._s.lock:
            started = run_now_state(self._s)
        return {"triggered": started, "skipped": self._s.scan_all.skipped}


def _succeeded(art: Artifact) -> bool:
    summary = overview(art)
    return summary is not None and summary["scan_status"] == "Success"
