"""Where an image comes from: its base image, found from facts that never change per digest.

Pure: takes the facts of every image of one registry (``Image``: layer digests from the
manifest, build-history steps, the OCI base annotations) and returns each one's ``Lineage``:

1. the OCI annotations ``org.opencontainers.image.base.digest``/``.base.name``: a digest that
   is an image of this registry is that image; a name on this registry's host is looked up by
   tag; any other name is "external (debian:12 per annotation)";
2. else layer ancestry: the image of the base-image scope with the most layers whose layer
   list is a proper prefix of this image's (Anchore's "golden image" match);
3. else build history: the in-scope image with the longest history that is a proper prefix of
   this one's (same ``created``/``created_by`` steps), for images whose manifest, or whose
   base's manifest, is unknown;
4. else "unknown", or "unknown (no pull access to base)" where the registry refused the pull
   of the base the annotation names, or of the image's own manifest.

An image index is not an image: its children are, one per platform, each with the index's tags.
A base that is itself an index (``debian`` pushed multi-arch) is matched per platform: an
annotation naming the index (as the image-spec asks) or its tag resolves to the child whose
layers start the image's, else the child of the image's platform.

``own_steps`` lists the build steps after the base's (the image's own Dockerfile lines) and
``step_for`` names the one that added a package where that is unambiguous: the only non-empty
own step, or the only one running the package's ecosystem installer.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    platform: str = ""  # "linux/arm64/v8" for an index's child, else ""
    index: str = ""  # the digest of the index it is a child of, else ""
    denied: str = ""  # the project whose pull of its manifest was refused, else ""
    listed: bool = True  # in the registry's walk (not only a base an annotation named)

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
    method: str  # "annotation", "layers", "history", "external", "denied" or "unknown"
    base_digest: str = ""  # an image of this registry, or ""
    base: str = ""  # "base/debian:12.5", "external (debian:12 per annotation)" or "unknown"


def in_scope(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A test of ``project/repository`` against the ``base_images`` globs (none: everything)."""
    if not patterns:
        return lambda name: True
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def split_ref(name: str) -> tuple[str, str, str]:
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
    host, repo, ref = split_ref(name)
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        repo = repo.removeprefix("library/")
        host = ""
    shown = f"{host}/{repo}" if host else repo
    return f"{shown}{ref}" if ref.startswith("@") else f"{shown}:{ref}"


def resolve(images: Iterable[Image], *, registry_host: str,
            scope: Callable[[str], bool] = lambda name: True) -> dict[str, Lineage]:
    """Every image's lineage (keyed by digest)."""
    return dict(resolve_each(list(images), registry_host=registry_host, scope=scope))


def resolve_each(images: Iterable[Image], *, registry_host: str,
                 scope: Callable[[str], bool] = lambda name: True
                 ) -> Iterator[tuple[str, Lineage]]:
    """``resolve`` over images iterated twice (a list, or a source whose each iteration reads
    them again, ``store.lineage.Reread``): first into the table
    that looks bases up, holding each image without its build steps and layer digests (a
    hash of each whole list in their place), then image by image, each resolved as it comes.
    What a registry of 100,000 images holds is the table, not every image's history."""
    table = _Table(images, scope, registry_host)
    for image in images:
        yield image.digest, table.one(image, registry_host)


_HAD_STEPS = (Step(""),)  # a table's image that had build steps (``_known`` asks no more)


def _chained(items: Iterable[str]) -> list[str]:
    """A key for each prefix of ``items`` (``[k - 1]``: its first ``k``), chained so that
    equal prefixes have equal keys."""
    keys: list[str] = []
    key = ""
    for item in items:
        key = hashlib.blake2b(f"{key}{item!r}".encode(), digest_size=16).hexdigest()
        keys.append(key)
    return keys


def _history_keys(steps: Sequence[Step]) -> list[str]:
    """A key for each prefix of a build history, by ``created``/``created_by``."""
    return _chained(repr((s.created, s.created_by)) for s in steps)


def _held_layers(layers: tuple[str, ...]) -> tuple[str, ...]:
    """How a table holds an image's layers: as many times the key of the whole list (its
    length is what ``_choose`` compares, the key what a prefix is matched by)."""
    return (_chained(layers)[-1],) * len(layers) if layers else ()


def _is_prefix(base: Image, keys: Sequence[str]) -> bool:
    """``base`` (as the table holds it) is built on by the image whose layer keys are
    ``keys``: its layers are a proper prefix of the image's."""
    n = len(base.layers)
    return 0 < n < len(keys) and keys[n - 1] == base.layers[0]


def _choose(image: Image, keys: Sequence[str], candidates: Sequence[Image]) -> Image | None:
    """Of one base's images (a single image, or an index's children), the one ``image``
    (``keys``: its layers' keys) is built on: the longest whose layers start its own, else
    the one of its platform, else the only one."""
    others = [c for c in candidates if c.digest != image.digest]
    layered = [c for c in others if _is_prefix(c, keys)]
    if layered:
        return max(layered, key=lambda c: (len(c.layers), c.digest))
    same = [c for c in others if image.platform and c.platform == image.platform]
    if len(same) == 1:
        return same[0]
    return others[0] if len(others) == 1 else None


def _known(image: Image) -> bool:
    """Whether the registry told anything of the image (its manifest or its history)."""
    return bool(image.layers or image.steps or not image.denied)


def _add(table: dict[str, Image | list[Image]], key: str, image: Image) -> None:
    """``image`` under ``key``: alone, or a list from the second image on (most keys have
    one: a list each would be most of the table)."""
    held = table.get(key)
    if held is None:
        table[key] = image
    elif isinstance(held, Image):
        table[key] = [held, image]
    else:
        held.append(image)


def _all(held: Image | list[Image] | None) -> list[Image]:
    return [] if held is None else [held] if isinstance(held, Image) else held


class _Table:
    """The registry's images, looked up every way a base can be named."""

    def __init__(self, every: Iterable[Image], scope: Callable[[str], bool],
                 host: str = "") -> None:
        stripped: list[Image] = []
        history: dict[str, str] = {}  # a candidate's whole history, by digest
        named: set[str] = set()  # the repositories annotations name by tag on ``host``
        for i in every:
            if i.steps and scope(i.name):
                history[i.digest] = _history_keys(i.steps)[-1]
            if i.base_name:
                ref_host, repo, ref = split_ref(i.base_name)
                if ref_host == host and not ref.startswith("@"):
                    named.add(repo)
            stripped.append(dataclasses.replace(i, steps=_HAD_STEPS if i.steps else (),
                                                layers=_held_layers(i.layers)))
        ordered = sorted(stripped, key=lambda i: i.digest)
        del stripped
        # One image per digest, a list only where an index's children answer for its digest.
        self.by_digest: dict[str, Image | list[Image]] = {i.digest: i for i in ordered}
        # Tags only of the repositories an annotation names (``_annotated`` looks up no other:
        # every image's tags were a fifth of what resolving 100,000 images held).
        self.by_tag: dict[tuple[str, str], list[Image]] = {}
        for i in ordered:
            if i.index:  # an index's children answer for the index's digest
                _add(self.by_digest, i.index, i)
            if i.tags and i.name in named:
                for tag in i.tags:
                    self.by_tag.setdefault((i.name, tag), []).append(i)
        self.denied = {i.project for i in ordered if i.denied}
        candidates = [i for i in ordered if scope(i.name)]
        self.by_layers = {i.layers[0]: i for i in candidates if i.layers}
        self.by_steps: dict[str, Image | list[Image]] = {}
        for i in candidates:
            if i.digest in history:
                _add(self.by_steps, history[i.digest], i)

    def _annotated(self, image: Image, keys: Sequence[str], host: str
                   ) -> tuple[Image | None, str, str]:
        """(the base the annotations name, an external name, a project refusing its pull)."""
        if image.base_digest and image.base_digest != image.digest:
            named = _all(self.by_digest.get(image.base_digest))
            # a digest known only from a refused pull tells nothing of the base
            refused = next((n.denied for n in named if n.denied and not _known(n)), "")
            found = _choose(image, keys, [n for n in named if _known(n)])
            if found is not None or refused:
                return found, "", refused
        if not image.base_name:
            return None, "", ""
        ref_host, repo, ref = split_ref(image.base_name)
        if ref_host != host:
            return None, f"external ({_short_external(image.base_name)} per annotation)", ""
        project = repo.split("/", 1)[0]
        if not ref.startswith("@"):
            found = _choose(image, keys, self.by_tag.get((repo, ref), []))
            if found is not None:
                return found, "", ""
        return None, "", project if project in self.denied else ""

    def one(self, image: Image, host: str) -> Lineage:
        layers = _chained(image.layers)
        found, external, refused = self._annotated(image, layers, host)
        if found is not None:
            return Lineage(image.digest, "annotation", found.digest, found.label)
        if external:
            return Lineage(image.digest, "external", base=external)
        for k in range(len(layers) - 1, 0, -1):
            layered = self.by_layers.get(layers[k - 1])
            if layered is not None and layered.digest != image.digest:
                return Lineage(image.digest, "layers", layered.digest, layered.label)
        keys = _history_keys(image.steps)  # also where the base's manifest was refused
        for k in range(len(keys) - 1, 0, -1):
            stepped = _choose(image, layers, _all(self.by_steps.get(keys[k - 1])))
            if stepped is not None:
                return Lineage(image.digest, "history", stepped.digest, stepped.label)
        refused = refused or image.denied
        if refused:
            return Lineage(image.digest, "denied", base=f"unknown (no pull access to {refused})")
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
