"""Which registries a burst of webhook events calls a small run for (pure): events outside the
registry's project and repository globs, or for a registry not configured, call for none."""

from __future__ import annotations

import asyncio

import pytest

from daemon.config_types import Config, RegistryConfig, Secret
from daemon.scan.fastpath import drain, in_scope, wanted_registries, webhook_schedule
from daemon.service.hooks import HookEvent

DIGEST = "sha256:" + "b5" * 32


def registry(name: str = "prod", **globs: tuple[str, ...]) -> RegistryConfig:
    return RegistryConfig(name=name, url="https://harbor.example.test", username="u",
                          password=Secret("p", "literal"), **globs)  # type: ignore[arg-type]


def event(repository: str, registry_name: str = "prod") -> HookEvent:
    project = repository.split("/", 1)[0]
    return HookEvent(registry_name, "PUSH_ARTIFACT", project, repository, (DIGEST,), 0)


@pytest.mark.parametrize(("globs", "repository", "wanted"), [
    pytest.param({}, "test/alpine/helm", True, id="every-project"),
    pytest.param({"projects": ("pay*",)}, "test/alpine/helm", False, id="project-outside"),
    pytest.param({"exclude_projects": ("test",)}, "test/alpine/helm", False,
                 id="project-excluded"),
    pytest.param({"repositories": ("alpine/*",)}, "test/alpine/helm", True,
                 id="repository-glob-without-project"),
    pytest.param({"repositories": ("test/alpine/*",)}, "test/alpine/helm", True,
                 id="repository-glob-with-project"),
    pytest.param({"exclude_repositories": ("*/helm",)}, "test/alpine/helm", False,
                 id="repository-excluded"),
])
def test_an_event_is_in_scope_only_within_the_registrys_globs(
        globs: dict[str, tuple[str, ...]], repository: str, wanted: bool) -> None:
    assert in_scope(registry(**globs), event(repository)) is wanted


def test_a_burst_calls_one_small_run_per_registry_it_concerns() -> None:
    config = Config(registries=(registry("prod"), registry("dev", projects=("dev-*",))))
    events = [event("test/a"), event("test/b"), event("other/x", "dev"), event("t/z", "gone"),
              event("dev-1/app", "dev")]
    assert wanted_registries(config, events) == ["prod", "dev"]
    schedule = webhook_schedule(registry("prod"))
    assert schedule.registries == ("prod",) and schedule.select == ("changed", "unscanned",
                                                                    "failed")


async def test_events_arriving_together_are_drained_as_one_burst() -> None:
    queue: asyncio.Queue[HookEvent] = asyncio.Queue()
    for name in ("test/a", "test/b", "test/c"):
        queue.put_nowait(event(name))
    burst = await drain(queue, settle=0.01)
    assert [e.repository for e in burst] == ["test/a", "test/b", "test/c"] and queue.empty()
