"""The registry's content: projects, repositories, artifacts and tags, built from a seed.

Mutable on purpose (scans and pushes change it); every mutation happens under the simulator's
lock and bumps ``Artifact.version`` so that cached JSON is re-rendered.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field

from daemon.sim import catalog, lineage
from daemon.sim.options import SimOptions
from daemon.sim.trivy import TrivyReport
from daemon.sim.vulndb import Item, VulnDB, stable_seed

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
CNAB_CONFIG = "application/vnd.cnab.manifest.v1"
PLATFORMS = (("amd64", None), ("arm64", "v8"), ("arm", "v7"))
Packages = tuple[tuple[str, str], ...]
FINAL = ("Success", "Error", "Stopped")


@dataclass(eq=False)
class Scan:
    report_id: str
    status: str
    start_wall: float
    end_wall: float | None = None
    queued_mono: float = 0.0
    adapter_start: float | None = None
    adapter_end: float | None = None
    percent: int = 0
    fail: bool = False
    items: tuple[Item, ...] | None = None
    log: list[str] = field(default_factory=list)
    scanner_version: str = "v0.50.1"
    by_scan_all: bool = False  # its end events carry no scan_overview (goharbor/harbor#21005)


@dataclass(eq=False)
class Tag:
    id: int
    name: str
    push_time: float
    pull_time: float | None = None  # a GET of its manifest by this tag (``SimState.pulled``)


@dataclass(eq=False)
class Artifact:
    id: int
    project: Project
    repo: Repository
    digest: str
    type: str
    manifest_media_type: str
    media_type: str
    size: int
    push_time: float
    tags: list[Tag] = field(default_factory=list)
    pull_time: float | None = None  # the last GET of its manifest (``SimState.pulled``)
    children: list[Artifact] = field(default_factory=list)
    parents: list[Artifact] = field(default_factory=list)
    packages: tuple[tuple[str, str], ...] = ()
    platform: tuple[str, str | None] = ("amd64", None)
    os_family: str = "linux"
    scan: Scan | None = None
    scanner_version: str = "v0.50.1"
    version: int = 0
    # how it was built (daemon/sim/lineage.py): layer digests, config history, its base
    layers: tuple[str, ...] = ()
    history: tuple[dict[str, object], ...] = ()
    created: float = 0.0
    built_on: Artifact | None = None
    external_base: str = ""
    annotate: bool = False
    language: str = ""

    @property
    def top_level(self) -> bool:
        return not (self.parents and not self.tags)

    @property
    def is_index(self) -> bool:
        return self.manifest_media_type == OCI_INDEX and self.type == "IMAGE"

    def record_pull(self, at: float, tag: str = "") -> None:
        """A pull of it at ``at`` (by ``tag`` when asked by tag), as Harbor records one: its
        pull time, the tag's, one more on the repository's pull count, which moves its
        update time too (``AddPullCount``)."""
        self.pull_time = at
        for t in self.tags:
            if t.name == tag:
                t.pull_time = at
        self.repo.pull_count += 1
        self.repo.pulled_at = max(self.repo.pulled_at, at)

    def touch(self) -> None:
        self.version += 1
        for parent in self.parents:
            parent.version += 1


@dataclass(eq=False)
class Repository:
    id: int
    project: Project
    name: str  # full name, with the project: "payments/team/app"
    creation_time: float
    artifacts: list[Artifact] = field(default_factory=list)
    deleted: int = 0  # artifacts deleted so far: new digests never repeat an old one
    pull_count: int = 0  # manifest GETs that counted as pulls (``SimState.pulled``)
    pulled_at: float = 0.0  # the last of them: Harbor's AddPullCount sets update_time too

    def update_time(self) -> float:
        """Harbor's ``update_time``: the newest push, or pull (``AddPullCount``)."""
        pushed = max((a.push_time for a in self.artifacts), default=self.creation_time)
        return max(pushed, self.pulled_at)

    @property
    def short(self) -> str:
        return self.name.split("/", 1)[1]

    def top_level(self) -> list[Artifact]:
        return [a for a in self.artifacts if a.top_level]


@dataclass(eq=False)
class Project:
    id: int
    name: str
    creation_time: float
    robot_secret: str
    repositories: list[Repository] = field(default_factory=list)
    allowlist: tuple[str, ...] = ()  # the project's own CVE allowlist
    allowlist_expires_at: float | None = None
    reuse_system_allowlist: bool = True  # metadata.reuse_sys_cve_allowlist, as a new project has
    public: bool = False  # metadata.public: anonymous callers may read it
    robot_expires_at: float = -1  # Unix seconds; -1 never expires (Harbor's robot.ExpiresAt)
    robot_disabled: bool = False
    robot_can_pull: bool = True  # its robot's repository:pull permission
    robot_may_list: bool = False  # granted robot:list in its project (GET /robots answers it)


def platform_child(art: Artifact | None, platform: tuple[str, str | None]) -> Artifact | None:
    """The image of ``art`` for ``platform``: an index's child of that platform (else its
    first child, as a pull without a matching platform would fail), or ``art`` itself."""
    if art is None or not art.children:
        return art
    return next((c for c in art.children if c.platform == platform), art.children[0])


def digest_of(*parts: object) -> str:
    return "sha256:" + hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()


class Inventory:
    def __init__(self, options: SimOptions, db: VulnDB, reports: list[TrivyReport],
                 started: float) -> None:
        self.options = options
        self.db = db
        self.reports = reports
        self.rng = random.Random(stable_seed(options.seed, "inventory"))
        self.projects: list[Project] = []
        self.by_digest: dict[tuple[int, str], Artifact] = {}
        self._ids = {"artifact": 0, "tag": 0, "repo": 0}
        # Harbor's project ids are a database sequence: ``library`` is 1 (created at install),
        # and projects deleted over the years leave gaps, so an id is never a listing position.
        self._project_ids = random.Random(stable_seed(options.seed, "project-ids"))
        self._last_project_id = 0
        self.started = started
        self.bases: list[Repository] = []  # the base project's repositories
        self._build()

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def next_project_id(self) -> int:
        gap = 0 if self._last_project_id == 0 else self._project_ids.choice((0, 0, 1, 3, 8))
        self._last_project_id += 1 + gap
        return self._last_project_id

    def new_report_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # ---- building -----------------------------------------------------------------------------
    def _build(self) -> None:
        o = self.options
        base = self.started - 30 * 86400
        slots = o.projects * o.repositories_per_project * o.artifacts_per_repository
        order = list(range(slots))
        self.rng.shuffle(order)

        def take(share: float) -> set[int]:
            n = 0 if share <= 0 else max(1, round(share * slots))
            chosen = set(order[:n])
            del order[:n]
            return chosen

        base_project = self._build_bases(base) if o.base_images and not self.reports else None
        kinds = {**{i: "CHART" for i in take(o.chart_share)},
                 **{i: "CNAB" for i in take(o.cnab_share)},
                 **{i: "INDEX" for i in take(o.index_share)}}
        slot = 0
        for p in range(o.projects):
            name = catalog.PROJECT_NAMES[p % len(catalog.PROJECT_NAMES)]
            if p >= len(catalog.PROJECT_NAMES):
                name = f"{name}{p // len(catalog.PROJECT_NAMES) + 1}"
            secret = hashlib.sha256(f"{o.seed}/{name}/robot".encode()).hexdigest()[:32]
            project = Project(self.next_project_id(), name, base - 86400 * (o.projects - p),
                              secret)
            self.projects.append(project)
            names = [catalog.NESTED_REPOS[p % len(catalog.NESTED_REPOS)]]
            plain = list(catalog.PLAIN_REPOS)
            self.rng.shuffle(plain)
            while len(names) < o.repositories_per_project:
                k = len(names) - 1
                names.append(plain[k % len(plain)] + (f"-{k // len(plain) + 1}" if k >= len(plain)
                                                       else ""))
            for r, short in enumerate(names):
                repo = Repository(self.next_id("repo"), project, f"{name}/{short}",
                                  base + r * 3600)
                project.repositories.append(repo)
                for a in range(o.artifacts_per_repository):
                    when = base + (slot % 997) * 1200 + a * 86400
                    tag = None if (a == 0 and o.artifacts_per_repository >= 3
                                   and self.rng.random() < 0.15) else f"1.{a}.0"
                    self._add(repo, kinds.get(slot, "IMAGE"), tag, when, None)
                    slot += 1
                if repo.artifacts and repo.artifacts[-1].tags:
                    newest = repo.artifacts[-1]
                    newest.tags.append(Tag(self.next_id("tag"), "latest", newest.push_time))
        if base_project is not None:
            base_project.id = self.next_project_id()  # created after library and the rest
            self.projects.append(base_project)
        self._scan_at_start()

    def _build_bases(self, start: float) -> Project:
        """The ``base`` project: per base repository, ``base_tags`` tags a week apart, each
        newer one upgrading packages (so it fixes CVEs the older carries)."""
        o = self.options
        name = lineage.BASE_PROJECT
        secret = hashlib.sha256(f"{o.seed}/{name}/robot".encode()).hexdigest()[:32]
        project = Project(0, name, start - 90 * 86400, secret)
        for short, family, first, _external in lineage.BASE_REPOS[: o.base_images]:
            repo = Repository(self.next_id("repo"), project, f"{name}/{short}", start - 80 * 86400)
            project.repositories.append(repo)
            self.bases.append(repo)
            tag = first
            for k in range(o.base_tags):
                when = start - (o.base_tags - k) * 7 * 86400
                self._add_base(repo, family, tag, when)
                tag = catalog.bump(tag)
        return project

    def _add_base(self, repo: Repository, family: str, tag: str, when: float) -> Artifact:
        """One base tag: an image, or (``base_platforms`` > 1) an OCI index whose children,
        one per platform, carry the same packages on their own root filesystem layers."""
        n = len(repo.artifacts) + repo.deleted
        digest = digest_of(self.options.seed, repo.name, n, "base")
        rng = random.Random(stable_seed(self.options.seed, "base", repo.name, n))
        images = [a for a in repo.artifacts if a.packages]
        if images:
            packages = tuple((p, self.db.upgrade(rng, p, v)) if rng.random() < 0.6 else (p, v)
                             for p, v in images[-1].packages)
        else:
            pool = list(catalog.OS_FAMILIES[family])
            rng.shuffle(pool)
            packages = tuple(self.db.choose_from(rng, pool,
                                                 self.options.vulnerabilities_per_artifact))
        size = 30_000_000 + stable_seed(digest) % 50_000_000
        platforms = PLATFORMS[: self.options.base_platforms]
        if len(platforms) == 1:
            art = Artifact(self.next_id("artifact"), repo.project, repo, digest, "IMAGE",
                           OCI_MANIFEST, OCI_CONFIG, size, when, packages=packages)
            lineage.build_base(art, family, when)
        else:
            art = Artifact(self.next_id("artifact"), repo.project, repo, digest, "IMAGE",
                           OCI_INDEX, OCI_INDEX, 1500, when)
            for arch, variant in platforms:
                child = Artifact(self.next_id("artifact"), repo.project, repo,
                                 digest_of(digest, arch, variant), "IMAGE", OCI_MANIFEST,
                                 OCI_CONFIG, size, when, packages=packages,
                                 platform=(arch, variant))
                lineage.build_base(child, family, when)
                child.parents.append(art)
                art.children.append(child)
                repo.artifacts.append(child)
                self.by_digest[(repo.id, child.digest)] = child
        art.tags.append(Tag(self.next_id("tag"), tag, when))
        repo.artifacts.append(art)
        self.by_digest[(repo.id, digest)] = art
        return art

    def _pick_base(self, repository: str, digest: str) -> Artifact | None:
        """The base an application image is built on: one base repository per application
        repository; mostly an older tag, as teams lag behind their base images."""
        family = random.Random(stable_seed(self.options.seed, "family", repository))
        repo = self.bases[family.randrange(len(self.bases))]
        rng = random.Random(stable_seed(self.options.seed, "built-on", digest))
        tagged = [a for a in repo.artifacts if a.tags]
        if not tagged:
            return None
        weights = [len(tagged) - k for k in range(len(tagged))]
        return rng.choices(tagged, weights=weights)[0]

    def _own_packages(self, seedparts: tuple[object, ...], model: Artifact | None
                      ) -> tuple[str, Packages]:
        rng = random.Random(stable_seed(self.options.seed, "own", *seedparts))
        if model is not None and model.language:
            base = set(model.built_on.packages) if model.built_on else set()
            own = tuple((n, self.db.upgrade(rng, n, v)) if rng.random() < 0.3 else (n, v)
                        for n, v in model.packages if (n, v) not in base)
            return model.language, own
        language = sorted(catalog.LANGUAGES)[rng.randrange(len(catalog.LANGUAGES))]
        pool = list(catalog.LANGUAGES[language])
        rng.shuffle(pool)
        return language, tuple(self.db.choose_from(
            rng, pool, self.options.vulnerabilities_per_artifact // 2))

    def _image_content(self, seedparts: tuple[object, ...], base: Packages | None,
                       report: TrivyReport | None = None) -> tuple[Packages, str]:
        if report is not None:  # a push that names its report
            return report.packages, report.scanner_version
        rng = random.Random(stable_seed(self.options.seed, "content", *seedparts))
        if self.reports:
            report = self.reports[rng.randrange(len(self.reports))]
            return report.packages, report.scanner_version
        if base is not None:
            upgraded = tuple((n, self.db.upgrade(rng, n, v)) if rng.random() < 0.3 else (n, v)
                             for n, v in base)
            return upgraded, "v0.50.1"
        return tuple(self.db.choose_packages(rng, self.options.vulnerabilities_per_artifact)), \
            "v0.50.1"

    def _add(self, repo: Repository, kind: str, tag: str | None, when: float,
             base: tuple[tuple[str, str], ...] | None, model: Artifact | None = None,
             on: Artifact | None = None, report: TrivyReport | None = None) -> Artifact:
        project = repo.project
        n = len(repo.artifacts) + repo.deleted
        digest = digest_of(self.options.seed, repo.name, n, kind)
        built_on, language = None, ""
        if self.bases and kind in ("IMAGE", "INDEX"):
            built_on = on or (model.built_on if model is not None else None) or \
                self._pick_base(repo.name, digest)
        if built_on is not None and report is None:
            language, own = self._own_packages((repo.name, n), model)
            base = None
        elif report is not None:
            built_on = None
        size = 2_000_000 + stable_seed(digest) % 80_000_000
        if kind == "CHART":
            art = Artifact(self.next_id("artifact"), project, repo, digest, "CHART", OCI_MANIFEST,
                           HELM_CONFIG, 4000 + size % 20000, when)
        elif kind == "CNAB":
            art = Artifact(self.next_id("artifact"), project, repo, digest, "CNAB", OCI_INDEX,
                           CNAB_CONFIG, 3000 + size % 5000, when)
        elif kind == "INDEX":
            art = Artifact(self.next_id("artifact"), project, repo, digest, "IMAGE", OCI_INDEX,
                           OCI_INDEX, 1500, when)
            packages, version = self._image_content((repo.name, n, "index"), base)
            platforms: tuple[tuple[str, str | None], ...] = PLATFORMS[: 2 + n % 2]
            if built_on is not None and built_on.children:  # only what the base is built for
                platforms = tuple(c.platform for c in built_on.children)
            for c, (arch, variant) in enumerate(platforms):
                on_platform = platform_child(built_on, (arch, variant))
                child_packages = packages
                if c > 0 and packages:  # an arm build differs a little from the amd64 one
                    name, ver = packages[0]
                    child_packages = ((name, self.db.upgrade(self.rng, name, ver)), *packages[1:])
                if on_platform is not None:  # the base's packages as they are, then its own
                    mine = own
                    if c > 0 and own:
                        name, ver = own[0]
                        mine = ((name, self.db.upgrade(self.rng, name, ver)), *own[1:])
                    child_packages = on_platform.packages + mine
                child = Artifact(self.next_id("artifact"), project, repo,
                                 digest_of(digest, arch, variant), "IMAGE", OCI_MANIFEST,
                                 OCI_CONFIG, size // (c + 1), when, packages=child_packages,
                                 platform=(arch, variant), scanner_version=version)
                self._build_app(child, on_platform, language, when)
                child.parents.append(art)
                art.children.append(child)
                repo.artifacts.append(child)
                self.by_digest[(repo.id, child.digest)] = child
        else:
            docker = stable_seed(digest) % 2 == 0
            packages, version = self._image_content((repo.name, n, "image"), base, report)
            on_platform = platform_child(built_on, ("amd64", None))
            if on_platform is not None:
                packages = on_platform.packages + own
            art = Artifact(self.next_id("artifact"), project, repo, digest, "IMAGE",
                           DOCKER_MANIFEST if docker else OCI_MANIFEST,
                           DOCKER_CONFIG if docker else OCI_CONFIG, size, when,
                           packages=packages, scanner_version=version)
            self._build_app(art, on_platform, language, when)
        if tag is not None:
            art.tags.append(Tag(self.next_id("tag"), tag, when))
        repo.artifacts.append(art)
        self.by_digest[(repo.id, art.digest)] = art
        return art

    def _build_app(self, art: Artifact, on: Artifact | None, language: str,
                   when: float) -> None:
        family = lineage.family_of(on.packages if on is not None else art.packages)
        external = next(e for _, f, _, e in lineage.BASE_REPOS if f == family)
        art.language = language if on is not None else lineage.language_of(art.packages)
        rng = random.Random(stable_seed(self.options.seed, "build", art.digest))
        lineage.build_app(art, on, external, art.language, when, rng,
                          self.options.annotated_share)

    def _scan_at_start(self) -> None:
        share = self.options.scanned_share
        tops = [a for p in self.projects for r in p.repositories for a in r.artifacts
                if a.top_level and a.type == "IMAGE"]
        if share <= 0 or not tops:
            return
        count = max(1, round(share * len(tops)))
        for art in self.rng.sample(tops, count):
            for target in art.children or [art]:
                end = self.started - 3600 - self.rng.random() * 72000
                scan = Scan(self.new_report_id(), "Success", end - 3 - self.rng.random() * 20,
                            end, percent=100, scanner_version=target.scanner_version)
                if not self.options.scanner_skip_update_pulltime:
                    target.record_pull(scan.start_wall)  # the scanner's pull of it
                scan.items = self.items_for(target)
                scan.log = [f"scan of {target.repo.name}@{target.digest} finished: "
                            f"{len(scan.items)} vulnerabilities"]
                target.scan = scan

    # ---- queries --------------------------------------------------------------------------------
    def items_for(self, art: Artifact) -> tuple[Item, ...]:
        return tuple(i for name, ver in art.packages for i in self.db.lookup(name, ver))

    def project(self, key: str, by_id: bool) -> Project | None:
        for project in self.projects:
            if (by_id and str(project.id) == key) or (not by_id and project.name == key):
                return project
        return None

    def repository(self, project: Project, short: str) -> Repository | None:
        for repo in project.repositories:
            if repo.short == short:
                return repo
        return None

    def artifact(self, repo: Repository, reference: str) -> Artifact | None:
        if reference.startswith("sha256:"):
            return self.by_digest.get((repo.id, reference))
        for art in repo.artifacts:
            if any(t.name == reference for t in art.tags):
                return art
        return None

    def all_artifacts(self) -> list[Artifact]:
        return [a for p in self.projects for r in p.repositories for a in r.artifacts]

    def delete(self, art: Artifact) -> list[Artifact]:
        """Harbor's deleteDeeply: the artifact, its tags, and each child that no tag and no
        other index keeps; an artifact an index references cannot go (the caller says 412)."""
        gone = [art]
        for child in art.children:
            child.parents = [p for p in child.parents if p is not art]
            if not child.tags and not child.parents:
                gone.append(child)
        art.children = []
        art.tags = []
        for item in gone:
            repo = item.repo
            repo.artifacts = [a for a in repo.artifacts if a is not item]
            repo.deleted += 1
            self.by_digest.pop((repo.id, item.digest), None)
            item.touch()
        return gone

    # ---- pushes ---------------------------------------------------------------------------------
    def push(self, project: Project, short: str | None, tag: str | None, now: float,
             on: Artifact | None = None, report: TrivyReport | None = None) -> Artifact:
        """A new image (``report``: with that Trivy report's packages, not built on a base)."""
        repos = [r for r in project.repositories
                 if any(a.type == "IMAGE" for a in r.artifacts)] or project.repositories
        if short is None:
            repo = repos[self.rng.randrange(len(repos))]
        else:
            found = self.repository(project, short)
            if found is None:
                found = Repository(self.next_id("repo"), project, f"{project.name}/{short}", now)
                project.repositories.append(found)
            repo = found
        if tag is None and repo in self.bases:
            newest = [t.name for a in repo.artifacts for t in a.tags]
            tag = catalog.bump(newest[-1]) if newest else "1.0"
        if tag is None:
            taken = {t.name for a in repo.artifacts for t in a.tags}
            k = len(repo.artifacts)
            while f"1.{k}.0" in taken:
                k += 1
            tag = f"1.{k}.0"
        previous = self.artifact(repo, tag)
        images = [a for a in repo.artifacts if a.type == "IMAGE" and not a.children]
        model = previous if previous is not None and previous.packages else \
            (images[-1] if images else None)
        if previous is not None:
            previous.tags = [t for t in previous.tags if t.name != tag]
            previous.touch()
        if repo in self.bases:
            if report is not None:
                from daemon.errors import UsageError

                raise UsageError(f"{repo.name} holds the base images: push a report into an "
                                 "application repository")
            family = next(f for s, f, _, _ in lineage.BASE_REPOS if repo.short == s)
            return self._add_base(repo, family, tag, now)
        return self._add(repo, "IMAGE", tag, now, model.packages if model else None, model,
                         on, report)
