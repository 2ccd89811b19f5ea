"""The pure lineage decisions: which base an image has, and which own step added a package."""

from __future__ import annotations

import pytest

from daemon import lineage
from daemon.lineage import Image, Step, resolve, step_for, step_words

BASE = Image("sha256:b1", "base", "debian", ("12.5",), layers=("L1",),
             steps=(Step("ADD file:x in /", False, "t0"), Step("CMD", True, "t1")))
NEWER = Image("sha256:b2", "base", "debian", ("12.6",), layers=("L9",))
PY = Image("sha256:p1", "base", "python", ("3.12",), layers=("L1", "P1"),
           steps=(*BASE.steps, Step("RUN install python", False, "t2")))


def app(**kw: object) -> Image:
    fields: dict[str, object] = {"digest": "sha256:a1", "project": "payments",
                                 "repository": "api", "tags": ("1.0",),
                                 "layers": ("L1", "P1", "A1")}
    fields.update(kw)
    return Image(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("image", "method", "base"), [
    (app(), "layers", "base/python:3.12"),  # the longest prefix wins over base/debian
    (app(layers=("L1", "A1")), "layers", "base/debian:12.5"),
    (app(base_digest="sha256:b2"), "annotation", "base/debian:12.6"),
    (app(base_name="harbor.example.com/base/debian:12.5"), "annotation", "base/debian:12.5"),
    (app(base_name="docker.io/library/debian:12"), "external",
     "external (debian:12 per annotation)"),
    (app(layers=(), steps=(*PY.steps, Step("COPY . .", False, "t9"))), "history",
     "base/python:3.12"),
    (app(layers=("X1", "A1")), "unknown", "unknown"),
], ids=["longest-prefix", "shorter-prefix", "annotation-digest", "annotation-name",
        "external", "history", "unknown"])
def test_it_finds_the_base(image: Image, method: str, base: str) -> None:
    found = resolve([BASE, NEWER, PY, image], registry_host="harbor.example.com")
    assert (found[image.digest].method, found[image.digest].base) == (method, base)


def test_a_scope_limits_the_candidates() -> None:
    found = resolve([BASE, PY, app()], registry_host="h",
                    scope=lambda name: name == "base/debian")
    assert found["sha256:a1"].base == "base/debian:12.5"


@pytest.mark.parametrize(("ecosystem", "steps", "want"), [
    ("pypi", ["COPY requirements.txt .", "RUN pip install -r requirements.txt", "COPY . ."],
     "RUN pip install -r requirements.txt"),
    ("", ["COPY . ."], "COPY . ."),
    ("npm", ["RUN pip install a", "RUN pip install b"], ""),
    ("", ["RUN npm ci", "RUN pip install x"], ""),
], ids=["installer", "only-step", "none-matches", "ambiguous"])
def test_it_names_the_step_only_when_unambiguous(ecosystem: str, steps: list[str],
                                                 want: str) -> None:
    assert step_for(ecosystem, steps) == want


def test_step_words_drop_buildkit_noise() -> None:
    assert step_words("RUN /bin/sh -c pip install -r requirements.txt # buildkit") == \
        "RUN pip install -r requirements.txt"


def test_the_table_holds_the_tags_of_the_repositories_annotations_name_alone() -> None:
    # Resolving a large registry holds every image in a table; its tags are looked up only
    # for a base an annotation names by tag on this registry, so only those are indexed, and
    # a base named so is still found (on another host, or by digest, no tag is looked up).
    named = app(base_name="harbor.example.com/base/debian:12.6")
    others = [app(digest="sha256:a2", base_name="docker.io/library/python:3.12"),
              app(digest="sha256:a3", base_name="harbor.example.com/base/python@sha256:p1")]
    table = lineage._Table([BASE, NEWER, PY, named, *others], lambda name: True,
                           "harbor.example.com")
    assert sorted(table.by_tag) == [("base/debian", "12.5"), ("base/debian", "12.6")]
    found = resolve([BASE, NEWER, PY, named, *others], registry_host="harbor.example.com")
    assert (found[named.digest].method, found[named.digest].base) == (
        "annotation", "base/debian:12.6")
