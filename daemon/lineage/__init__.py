"""Where an image comes from: its base image, found from facts that never change per digest.

Pure: takes the facts of every image of one registry (``Image``: layer digests from the
manifest, build-history steps, the OCI base annotations) and returns each one's ``Lineage``:

1. the OCI annotations ``org.opencontainers.image.base.digest``/``.base.name``: a digest that
   is an image of this registry is that image; a name on this registry's host is looked up by
   tag; any other name is "external (debian:12 per annotation)";
2. else layer ancestry: the image of the base-image scope with the most layers whose layer
   list is a proper prefix of this image's (Anchore's "golden image" match);
3. else build history: the in-scope image with the longest history that is a proper prefix of
   this one's (same ``created``/``created_by`` steps), for images whose manifest is unknown;
4. else "unknown".

``own_steps`` lists the build steps after the base's (the image's own Dockerfile lines) and
``step_for`` names the one that added a package where that is unambiguous: the only non-empty
own step, or the only one running the package's ecosystem installer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass(frozen=True, slots=True)
class Step:
    created_by: str
    empty: bool = False
    created: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """What the registry says of one image digest (``store/lineage.py`` keeps it)."""

    digest: str
    project: str
    repository: str  # without the project
    tags: tuple[str, ...] = ()
    push_time: datetime | None = None
    layers: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    base_name: str = ""
    base_digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.project}/{self.repository}"

    @property
    def label(self) -> str:
        """``base/debian:12.5`` (its first tag), else ``base/debian@sha256:abcdef012345``."""
        return f"{self.name}:{self.tags[0]}" if self.tags else f"{self.name}@{self.digest[:19]}"


@dataclass(frozen=True, slots=True)
class Lineage:
    digest: str
    method: str  # "annotation", "layers", "history", "external" or "unknown"
    base_digest: str = ""  # an image of this registry, or ""
    base: str = ""  # "base/debian:12.5", "external (debian:12 per annotation)" or "unknown"


def in_scope(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A test of ``project/repository`` against the ``base_images`` globs (none: everything)."""
    if not patterns:
        return lambda name: True
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _split_ref(name: str) -> tuple[str, str, str]:
    """``host/proj/repo:tag`` → (host, "proj/repo", tag or "@digest")."""
    first, _, rest = name.partition("/")
    host = first if rest and ("." in first or ":" in first or first == "localhost") else ""
    path = rest if host else name
    if "@" in path:
        repo, _, ref = path.partition("@")
        return host, repo, "@" + ref
    repo, sep, tag = path.rpartition(":")
    if not sep or "/" in tag:
        return host, path, "latest"
    return host, repo, tag


def _short_external(name: str) -> str:
    host, repo, ref = _split_ref(name)
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        repo = repo.removeprefix("library/")
        host = ""
    shown = f"{host}/{repo}" if host else repo
    return f"{shown}{ref}" if ref.startswith("@") else f"{shown}:{ref}"


def resolve(images: Iterable[Image], *, registry_host: str,
            scope: Callable[[str], bool] = lambda name: True) -> dict[str, Lineage]:
    """Every image's lineage (keyed by digest)."""
    every = list(images)
    by_digest = {i.digest: i for i in every}
    by_tag = {(i.name, t): i for i in every for t in i.tags}
    candidates = [i for i in every if scope(i.name)]
    by_layers = {i.layers: i for i in sorted(candidates, key=lambda i: i.digest) if i.layers}
    by_steps = {_history_key(i.steps): i for i in sorted(candidates, key=lambda i: i.digest)
                if i.steps}
    out: dict[str, Lineage] = {}
    for image in every:
        out[image.digest] = _one(image, by_digest, by_tag, by_layers, by_steps, registry_host)
    return out


def _history_key(steps: Sequence[Step]) -> tuple[tuple[str, str], ...]:
    return tuple((s.created, s.created_by) for s in steps)


def _one(image: Image, by_digest: Mapping[str, Image], by_tag: Mapping[tuple[str, str], Image],
         by_layers: Mapping[tuple[str, ...], Image],
         by_steps: Mapping[tuple[tuple[str, str], ...], Image], host: str) -> Lineage:
    if image.base_digest and image.base_digest in by_digest \
            and image.base_digest != image.digest:
        return Lineage(image.digest, "annotation", image.base_digest,
                       by_digest[image.base_digest].label)
    if image.base_name:
        ref_host, repo, ref = _split_ref(image.base_name)
        if ref_host == host and not ref.startswith("@") and (repo, ref) in by_tag:
            found = by_tag[(repo, ref)]
            return Lineage(image.digest, "annotation", found.digest, found.label)
        if ref_host != host:
            return Lineage(image.digest, "external",
                           base=f"external ({_short_external(image.base_name)} per annotation)")
    for k in range(len(image.layers) - 1, 0, -1):
        layered = by_layers.get(image.layers[:k])
        if layered is not None and layered.digest != image.digest:
            return Lineage(image.digest, "layers", layered.digest, layered.label)
    if not image.layers:
        key = _history_key(image.steps)
        for k in range(len(key) - 1, 0, -1):
            stepped = by_steps.get(key[:k])
            if stepped is not None and stepped.digest != image.digest:
                return Lineage(image.digest, "history", stepped.digest, stepped.label)
    return Lineage(image.digest, "unknown", base="unknown")


def own_steps(image: Image, base: Image | None) -> tuple[str, ...]:
    """The image's own non-empty build steps (after the base's history)."""
    start = len(base.steps) if base is not None else 0
    return tuple(s.created_by for s in image.steps[start:] if not s.empty)


_INSTALLERS = {
    "pypi": ("pip ", "pip3 ", "poetry ", "pipenv ", "uv "), "npm": ("npm ", "yarn ", "pnpm "),
    "gomod": ("go build", "go install", "--from="), "golang": ("go build", "go install", "--from="),
    "deb": ("apt-get ", "apt ", "dpkg "), "apk": ("apk ",), "rpm": ("dnf ", "yum ", "microdnf "),
    "gem": ("gem ", "bundle "), "cargo": ("cargo ",), "maven": ("mvn ", "gradle "),
}


def step_for(ecosystem: str, steps: Sequence[str]) -> str:
    """The own step that added a package of ``ecosystem``, where unambiguous; else ""."""
    if len(steps) == 1:
        return steps[0]
    words = _INSTALLERS.get(ecosystem) or tuple(w for ws in _INSTALLERS.values() for w in ws)
    hits = [s for s in steps if any(w in s for w in words)]
    return hits[0] if len(hits) == 1 else ""


def step_words(step: str) -> str:
    """A build step as a person reads it: BuildKit's ``# buildkit`` and ``/bin/sh -c`` gone."""
    text = step.removesuffix("# buildkit").strip()
    text = text.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "")
    return " ".join(text.split())
