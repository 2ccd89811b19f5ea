"""TARGET arguments: ``registry/project/repository[:tag|@digest]``, any part a glob (pure).

Every command that takes a TARGET reads it here, whether it then asks Harbor
(``daemon/harbor/targets.py``) or the history database.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from daemon.errors import UnknownTarget
from daemon.model import Artifact

GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    return any(ch in GLOB_CHARS for ch in text)


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    registry: str
    project: str = "*"
    repository: str = "*"
    tag: str | None = None
    digest: str | None = None

    @property
    def exact_artifact(self) -> bool:
        parts = (self.project, self.repository, self.tag or self.digest or "*")
        return not any(is_glob(p) for p in parts)

    def matches(self, artifact: Artifact) -> bool:
        ref = artifact.ref
        if not fnmatchcase(ref.project, self.project):
            return False
        if not fnmatchcase(ref.repository, self.repository):
            return False
        if self.digest is not None:
            return ref.digest == self.digest or fnmatchcase(ref.digest, self.digest)
        if self.tag is not None:
            return any(fnmatchcase(t.name, self.tag) for t in artifact.tags)
        return True


def parse_target(text: str, *, partial: bool = False) -> Target:
    """Read a TARGET. With ``partial``, ``registry`` and ``registry/project`` are allowed too."""
    value = text.strip()
    digest = None
    if "@" in value:
        value, _, digest = value.partition("@")
        if not digest:
            raise UnknownTarget(f"target {text!r}: nothing after '@' (expected a digest)")
    tag = None
    head, slash, last = value.rpartition("/")
    if ":" in last and digest is None:
        last, _, tag = last.partition(":")
        if not tag:
            raise UnknownTarget(f"target {text!r}: nothing after ':' (expected a tag)")
    parts = [*head.split("/"), last] if slash else [last]
    if any(not p for p in parts):
        raise UnknownTarget(f"target {text!r}: empty part (expected "
                            "registry/project/repository[:tag|@digest])")
    if len(parts) < 3 and (not partial or tag or digest):
        raise UnknownTarget(
            f"target {text!r}: expected registry/project/repository[:tag|@digest]")
    return Target(
        text=text, registry=parts[0],
        project=parts[1] if len(parts) > 1 else "*",
        repository="/".join(parts[2:]) if len(parts) > 2 else "*",
        tag=tag, digest=digest,
    )
