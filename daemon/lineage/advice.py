"""Where each finding comes from, and the rebuild that fixes most (pure).

``Advisor`` holds one registry's lineage (``daemon.lineage``) and the package versions of the
base images' latest reports. For a finding of an image:

- ``base`` when the image's base carries the same package at the same version;
- ``own`` when the base does not carry it: the image's own layers added it, and the build step
  that did is named where unambiguous (``lineage.step_for``);
- ``unknown`` when the image's base is not in the registry (or not scanned yet, or its pull
  was refused).

A finding of an image index is attributed through its children (the images): from the base
where the base of any child carries the package at that version (each child's base is the
base's image of the same platform), else from the child's own layers.

A base-sourced finding has ``rebuild_on`` set when a newer scanned tag of the base's repository
(by version-like tag order, else push time) lacks it: "Rebuild on base/debian:12.8".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version

from daemon.lineage import Image, Lineage, own_steps, step_for, step_words

BASE, OWN, UNKNOWN = "base", "own", "unknown"


@dataclass(frozen=True, slots=True)
class Source:
    kind: str = UNKNOWN  # base, own or unknown
    base_image: str = ""  # "base/debian:12.5", "external (… per annotation)", "" when unknown
    rebuild_on: str = ""  # the newer base tag that lacks the finding, or ""
    step: str = ""  # the own build step that added the package, where unambiguous
    rebuild_pushed_at: datetime | None = None


def _tag_order(image: Image) -> tuple[int, Version | None, float]:
    versions = []
    for tag in image.tags:
        try:
            versions.append(Version(tag))
        except InvalidVersion:
            continue
    pushed = image.push_time.timestamp() if image.push_time else 0.0
    return (1, max(versions), pushed) if versions else (0, None, pushed)


def newer(a: Image, b: Image) -> bool:
    """``a`` is a later release than ``b``: tag versions where both have one, else push time."""
    ka, kb = _tag_order(a), _tag_order(b)
    if ka[0] and kb[0]:
        return bool(ka[1] > kb[1])  # type: ignore[operator]
    return ka[2] > kb[2]


class Advisor:
    """One registry's lineage, ready to attribute findings."""

    def __init__(self, images: Iterable[Image], found: Mapping[str, Lineage],
                 packages: Mapping[str, frozenset[tuple[str, str]]],
                 keys: Mapping[str, frozenset[tuple[str, str]]]) -> None:
        self.images = {i.digest: i for i in images}
        self.found = dict(found)
        self.packages = packages  # base digest → (package, version) of its latest report
        self.keys = keys  # digest → (vulnerability, package) of its latest report
        self._rebuild: dict[str, tuple[Image, frozenset[tuple[str, str]]] | None] = {}
        self.children: dict[str, list[str]] = {}  # index digest -> its children's digests
        for image in sorted(self.images.values(), key=lambda i: i.digest):
            if image.index:
                self.children.setdefault(image.index, []).append(image.digest)

    @staticmethod
    def bases_of(found: Mapping[str, Lineage]) -> set[str]:
        return {f.base_digest for f in found.values() if f.base_digest}

    def lineage(self, digest: str) -> Lineage | None:
        return self.found.get(digest)

    def rebuild(self, base_digest: str) -> tuple[Image, frozenset[tuple[str, str]]] | None:
        """The newest scanned tag of the base's repository after it, and what it lacks of the
        base's findings; ``None`` when there is none or it fixes nothing."""
        if base_digest in self._rebuild:
            return self._rebuild[base_digest]
        base = self.images.get(base_digest)
        result = None
        if base is not None and base_digest in self.keys:
            later = [i for i in self.images.values() if i.name == base.name and i.tags
                     and i.platform == base.platform and i.digest in self.keys
                     and newer(i, base)]
            best = None
            # by digest: of equally new tags (2.0 and 2.0.0) the same one, whatever order
            # the images were read in (the whole registry's, or a partial view's)
            for candidate in sorted(later, key=lambda i: i.digest):
                if best is None or newer(candidate, best):
                    best = candidate
            if best is not None:
                fixes = self.keys[base_digest] - self.keys[best.digest]
                result = (best, frozenset(fixes)) if fixes else None
        self._rebuild[base_digest] = result
        return result

    def source(self, digests: Iterable[str], vulnerability: str, package: str, version: str,
               ecosystem: str = "") -> Source:
        """The source of one finding carried by ``digests`` (an index stands for its
        children): the base where any carrier's base carries the package at that version,
        else the own layers of the first carrier whose base is known."""
        own: Source | None = None
        for digest in self._images_of(digests):
            found = self.found.get(digest)
            if found is None:
                continue
            if not found.base_digest:
                if found.method in ("external", "denied") and own is None:
                    own = Source(UNKNOWN, found.base)
                continue
            carried = self.packages.get(found.base_digest)
            if carried is None:
                continue  # the base is not scanned: nothing to compare
            if (package, version) in carried:
                rebuild = self.rebuild(found.base_digest)
                if rebuild is not None and (vulnerability, package) in rebuild[1]:
                    return Source(BASE, found.base, rebuild[0].label, "",
                                  rebuild[0].push_time)
                return Source(BASE, found.base)
            if own is None or own.kind == UNKNOWN:
                image, base = self.images.get(digest), self.images.get(found.base_digest)
                step = step_for(ecosystem, own_steps(image, base)) if image is not None else ""
                own = Source(OWN, found.base, step=step_words(step) if step else "")
        return own or Source()

    def _images_of(self, digests: Iterable[str]) -> list[str]:
        out: list[str] = []
        for digest in sorted(digests):
            out.extend(self.children.get(digest, [digest]))
        return out
