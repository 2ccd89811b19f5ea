from __future__ import annotations

import pytest

from daemon.versions import compare, highest, lowest_fix


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("3.0.13-1~deb12u1", "3.0.15-1~deb12u1", -1),
        ("3.0.15-1~deb12u1", "3.0.15-1", -1),
        ("1:1.0", "2.0", 1),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
        ("1.2.10", "1.2.9", 1),
        ("1.0.0-rc.1", "1.0.0", -1),
        ("1.0.0-alpha", "1.0.0-beta", -1),
        ("v2.1.0", "2.0.9", 1),
        ("1.1.1k-1.el8", "1.1.1k-2.el8", -1),
        ("1.0", "1.0", 0),
        ("abc123", "1.0", None),
        ("latest", "stable", None),
    ],
    ids=["debian-tilde", "tilde-sorts-first", "epoch", "revision-numeric", "numeric-not-lexical",
         "semver-prerelease-first", "semver-prerelease-order", "v-prefix", "rpm-release", "equal",
         "hash-unorderable", "words-unorderable"],
)
def test_it_orders_versions_best_effort(a: str, b: str, expected: int | None) -> None:
    assert compare(a, b) == expected
    if expected is not None:
        assert compare(b, a) == -expected


@pytest.mark.parametrize(
    ("installed", "fix", "expected"),
    [
        ("1.2.3", "1.2.5", "1.2.5"),
        ("1.2.3", "2.0.1, 1.2.5", "1.2.5"),
        ("2.0.0", "1.2.5, 2.0.1", "2.0.1"),
        ("1.2.3", "abc, 1.2.5", None),
    ],
    ids=["single", "lowest-newer-branch", "skips-older-branch", "unorderable"],
)
def test_it_picks_the_lowest_fix_above_the_installed_version(
    installed: str, fix: str, expected: str | None
) -> None:
    assert lowest_fix(installed, fix) == expected


def test_it_refuses_to_choose_the_highest_among_unorderable_versions() -> None:
    assert highest(["1.0", "2.0", "1.5"]) == "2.0"
    assert highest(["1.0", "deadbeef"]) is None
