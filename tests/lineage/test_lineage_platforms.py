"""The pure decisions for image indexes: a multi-arch base matched per platform, an index's
findings attributed through its children, and the rebuild on the newer tag's same platform."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.lineage import Image, Step, resolve
from daemon.lineage.advice import BASE, OWN, UNKNOWN, Advisor

HOST = "harbor.example.com"


def base_child(n: int, platform: str, tag: str = "12.5", index: str = "sha256:bi") -> Image:
    """One platform of a multi-arch base tag: every platform has the same build steps."""
    arch = platform.split("/")[1]
    steps = (Step("ADD file:x in /", False, f"t{n}.0"), Step('CMD ["bash"]', True, f"t{n}.1"))
    return Image(f"sha256:b{n}{arch}", "base", "debian", (tag,),
                 datetime(2026, 11, n, tzinfo=UTC), layers=(f"root-{n}-{arch}",), steps=steps,
                 platform=platform, index=index)


AMD, ARM = base_child(1, "linux/amd64"), base_child(1, "linux/arm64/v8")
NEW_AMD = base_child(2, "linux/amd64", "12.6", "sha256:bj")
NEW_ARM = base_child(2, "linux/arm64/v8", "12.6", "sha256:bj")
OWN_STEP = Step("RUN /bin/sh -c pip install -r requirements.txt # buildkit", False, "t5")


def child(on: Image, **kw: object) -> Image:
    arch = on.platform.split("/")[1]
    fields: dict[str, object] = {
        "digest": f"sha256:a-{arch}", "project": "payments", "repository": "api",
        "tags": ("1.0",), "layers": (*on.layers, f"own-{arch}"),
        "steps": (*on.steps, OWN_STEP), "platform": on.platform, "index": "sha256:ai"}
    fields.update(kw)
    return Image(**fields)  # type: ignore[arg-type]


EVERY = [AMD, ARM, NEW_AMD, NEW_ARM]


@pytest.mark.parametrize(("image", "method", "want"), [
    (child(ARM), "layers", ARM),
    (child(ARM, base_digest="sha256:bi"), "annotation", ARM),  # the index's digest
    (child(AMD, base_digest="sha256:bi"), "annotation", AMD),
    (child(ARM, base_name=f"{HOST}/base/debian:12.5"), "annotation", ARM),  # its tag
    (child(ARM, layers=(), base_digest="sha256:bi"), "annotation", ARM),  # by platform
    (child(ARM, layers=()), "history", ARM),  # the same steps on each: by platform
    (child(AMD, base_name=f"{HOST}/base/debian:12.6", layers=(), steps=()), "annotation",
     NEW_AMD),
], ids=["layers", "annotation-index-arm", "annotation-index-amd", "annotation-tag",
        "annotation-no-manifest", "history-per-platform", "newer-tag"])
def test_a_multi_arch_base_is_matched_per_platform(image: Image, method: str,
                                                   want: Image) -> None:
    found = resolve([*EVERY, image], registry_host=HOST)[image.digest]
    assert (found.method, found.base_digest, found.base) == (method, want.digest,
                                                             "base/debian:12.5"
                                                             if want.tags == ("12.5",)
                                                             else "base/debian:12.6")


def test_a_refused_base_is_unknown_no_pull_access() -> None:
    probe = Image("sha256:bx", "base", "debian", denied="base", listed=False)
    image = child(AMD, digest="sha256:z", layers=("other", "own"), steps=(),
                  base_digest="sha256:bx", base_name=f"{HOST}/base/debian:12.9")
    own = child(AMD, digest="sha256:y", project="team", layers=(), steps=(), denied="team")
    found = resolve([*EVERY, probe, image, own], registry_host=HOST)
    assert (found[image.digest].method, found[image.digest].base) == (
        "denied", "unknown (no pull access to base)")
    assert found[own.digest].base == "unknown (no pull access to team)"


def advisor(images: list[Image], packages: dict[str, frozenset[tuple[str, str]]],
            keys: dict[str, frozenset[tuple[str, str]]]) -> Advisor:
    return Advisor(images, resolve(images, registry_host=HOST), packages, keys)


def test_an_index_finding_comes_from_the_base_of_the_child_that_carries_it() -> None:
    amd, arm = child(AMD), child(ARM)
    # the arm base ships openssl 3.0.11, the amd64 one 3.0.13: the finding on 3.0.11 is the
    # arm base's, though the amd64 child comes first
    packages = {AMD.digest: frozenset({("openssl", "3.0.13")}),
                ARM.digest: frozenset({("openssl", "3.0.11")})}
    found = advisor([*EVERY, amd, arm], packages, {})
    got = found.source(["sha256:ai"], "CVE-1", "openssl", "3.0.11", "deb")
    assert (got.kind, got.base_image) == (BASE, "base/debian:12.5")
    mine = found.source(["sha256:ai"], "CVE-2", "werkzeug", "2.0.3", "pypi")
    assert (mine.kind, mine.step) == (OWN, "RUN pip install -r requirements.txt")
    assert found.source(["sha256:other"], "CVE-1", "openssl", "3.0.11").kind == UNKNOWN


def test_the_rebuild_is_the_newer_tag_of_the_same_platform() -> None:
    amd, arm = child(AMD), child(ARM)
    carried = frozenset({("CVE-1", "openssl"), ("CVE-2", "zlib")})
    keys = {AMD.digest: carried, ARM.digest: carried,
            NEW_AMD.digest: frozenset({("CVE-2", "zlib")}),  # 12.6 fixes CVE-1 on amd64
            NEW_ARM.digest: carried}  # …but not on arm64
    found = advisor([*EVERY, amd, arm], {AMD.digest: frozenset({("openssl", "1")}),
                                         ARM.digest: frozenset({("openssl", "1")})}, keys)
    rebuilt = found.rebuild(AMD.digest)
    assert rebuilt is not None and (rebuilt[0].digest, rebuilt[1]) == (
        NEW_AMD.digest, frozenset({("CVE-1", "openssl")}))
    assert found.rebuild(ARM.digest) is None
    got = found.source([amd.digest], "CVE-1", "openssl", "1")
    assert (got.kind, got.rebuild_on) == (BASE, "base/debian:12.6")
    assert found.source([arm.digest], "CVE-1", "openssl", "1").rebuild_on == ""
