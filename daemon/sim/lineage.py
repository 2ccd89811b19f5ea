"""How the simulated registry's images are built: layers, build history, OCI base annotations.

As in a real registry, an image built ``FROM`` another starts with that image's layers (the same
compressed digests) and its config history starts with the base's history; the build's own steps
follow (``WORKDIR``/``ENV``/``CMD`` are ``empty_layer``, ``COPY``/``RUN`` add a layer each, as
BuildKit writes them). Base images live in the ``base`` project (``SimOptions.base_images``),
several tags each, a newer tag upgrading packages; without it every image is built on an
external base (Docker Hub's debian or alpine). A share of OCI-manifest images carries the
``org.opencontainers.image.base.name``/``.base.digest`` annotations (Docker schema 2 manifests
have no annotations at all). The manifest itself is served under ``/v2/`` (``registry_v2.py``).
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from daemon.sim import catalog

if TYPE_CHECKING:
    from daemon.sim.inventory import Artifact

BASE_PROJECT = "base"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
# (repository in the base project, OS family, first tag, the external image it stands for)
BASE_REPOS = (("debian", "debian", "12.4", "docker.io/library/debian:bookworm-slim"),
              ("alpine", "alpine", "3.19.1", "docker.io/library/alpine:3.19"))
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_INSTALL = {"pypi": ("COPY requirements.txt . # buildkit",
                     "RUN /bin/sh -c pip install --no-cache-dir -r requirements.txt # buildkit"),
            "npm": ("COPY package.json package-lock.json ./ # buildkit",
                    "RUN /bin/sh -c npm ci --omit=dev # buildkit"),
            "gomod": ("COPY --from=build /out/server /app/server # buildkit",)}


def _digest(*parts: object) -> str:
    from daemon.sim.inventory import digest_of  # inventory imports this module
    return digest_of("layer", *parts)


def _ts(when: float) -> str:
    from daemon.sim.render import ts
    return ts(when)


def family_of(packages: tuple[tuple[str, str], ...]) -> str:
    names = {n for n, _ in packages}
    alpine = {n for n, _ in catalog.ALPINE} - {n for n, _ in catalog.DEBIAN}
    return "alpine" if names & alpine else "debian"


def language_of(packages: tuple[tuple[str, str], ...]) -> str:
    names = {n for n, _ in packages}
    for language, pool in sorted(catalog.LANGUAGES.items()):
        if names & {n for n, _ in pool}:
            return language
    return ""


def build_base(art: Artifact, family: str, when: float) -> None:
    """A base image: one ``ADD`` layer of the root filesystem, then its ``CMD``."""
    layer = _digest(art.digest, "rootfs")
    art.layers = (layer,)
    cmd = '["bash"]' if family == "debian" else '["/bin/sh"]'
    art.history = (
        {"created": _ts(when - 120),
         "created_by": f"/bin/sh -c #(nop) ADD file:{layer[7:71]} in / "},
        {"created": _ts(when - 119), "created_by": f"/bin/sh -c #(nop)  CMD {cmd}",
         "empty_layer": True},
    )
    art.created = when - 119


def build_app(art: Artifact, base: Artifact | None, external: str, language: str,
              when: float, rng: random.Random, annotate: float) -> None:
    """An application image on ``base`` (an artifact of this registry), else on ``external``."""
    if base is not None:
        layers, history = list(base.layers), [dict(h) for h in base.history]
    else:
        root = _digest(external, "rootfs")
        layers = [root]
        history = [{"created": _ts(when - 90 * 86400),
                    "created_by": f"/bin/sh -c #(nop) ADD file:{root[7:71]} in / "},
                   {"created": _ts(when - 90 * 86400 + 1),
                    "created_by": '/bin/sh -c #(nop)  CMD ["bash"]', "empty_layer": True}]
    steps: list[tuple[str, bool]] = [("WORKDIR /app", True)]
    steps += [(s, False) for s in _INSTALL.get(language, ())]
    steps += [("COPY . . # buildkit", False), ('ENV APP_ENV="production"', True),
              ('CMD ["/app/start"]', True)]
    t = when - 300
    for n, (step, empty) in enumerate(steps):
        t += 1 + rng.random() * 20
        entry: dict[str, Any] = {"created": _ts(t), "created_by": step,
                                 "comment": "buildkit.dockerfile.v0"}
        if empty:
            entry["empty_layer"] = True
        else:
            layers.append(_digest(art.digest, "own", n))
        history.append(entry)
    art.layers = tuple(layers)
    art.history = tuple(history)
    art.created = t
    art.built_on = base
    art.external_base = "" if base is not None else external
    if art.manifest_media_type.startswith("application/vnd.oci") and rng.random() < annotate:
        art.annotate = True


def annotations_of(art: Artifact, host: str) -> dict[str, str] | None:
    """The manifest's annotations as Harbor lists them (``None`` where there are none)."""
    if not art.annotate:
        return None
    base = art.built_on
    if base is None:
        return {BASE_NAME: art.external_base,
                BASE_DIGEST: _digest(art.external_base, "manifest")}
    if base.parents:  # a multi-arch base: the index's name and digest (image-spec#822)
        base = base.parents[0]
    tag = base.tags[0].name if base.tags else base.digest
    sep = ":" if base.tags else "@"
    return {BASE_NAME: f"{host}/{base.repo.name}{sep}{tag}", BASE_DIGEST: base.digest}


def manifest(art: Artifact, host: str) -> tuple[bytes, str]:
    """The manifest as the registry stores it (bytes, media type)."""
    if art.children:
        body: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": art.manifest_media_type,
            "manifests": [{"mediaType": c.manifest_media_type, "digest": c.digest,
                           "size": 1000 + len(c.layers) * 100,
                           "platform": {"architecture": c.platform[0], "os": "linux",
                                        **({"variant": c.platform[1]} if c.platform[1] else {})}}
                          for c in art.children]}
        return json.dumps(body, indent=3).encode(), art.manifest_media_type
    docker = art.manifest_media_type.startswith("application/vnd.docker")
    sizes = random.Random(art.digest)
    body = {"schemaVersion": 2, "mediaType": art.manifest_media_type,
            "config": {"mediaType": art.media_type, "size": 1500 + len(art.history) * 120,
                       "digest": _digest(art.digest, "config")},
            "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                        "size": sizes.randrange(200, 30_000_000), "digest": d}
                       for d in art.layers]}
    found = annotations_of(art, host)
    if found and not docker:
        body["annotations"] = found
    return json.dumps(body, indent=3).encode(), art.manifest_media_type


def _tagged(art: Artifact) -> Artifact:
    """Where an image's tags live: an index child's are its index's."""
    return art.parents[0] if art.parents and not art.tags else art


def platform_of(art: Artifact) -> str:
    arch, variant = art.platform
    return f"linux/{arch}/{variant}" if variant else f"linux/{arch}"


def truth(art: Artifact) -> dict[str, Any]:
    """What the simulator built ``art`` on, for tests (``GET /_sim/lineage``): an index
    child's tags are its index's, and its base is the base's child of its platform."""
    base = art.built_on
    index = art.parents[0].digest if art.parents and not art.tags else None
    return {"project": art.project.name, "repository": art.repo.name, "digest": art.digest,
            "tags": [t.name for t in _tagged(art).tags], "index": index,
            "platform": platform_of(art),
            "base": None if base is None else {
                "project": base.project.name, "repository": base.repo.name,
                "digest": base.digest, "tags": [t.name for t in _tagged(base).tags],
                "index": _tagged(base).digest if base.parents else None},
            "external": art.external_base, "annotated": art.annotate}
