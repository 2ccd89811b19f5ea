"""Fixtures shared by every test.

Tests that need the shared spec and fixtures (``../shared`` beside the checkout, or
``$SCANWATCH_SHARED``) ask for the ``shared_dir`` fixture. Where it is absent they skip with a
reason, as on a user's fresh clone; with ``SCANWATCH_REQUIRE_SHARED=1`` (set by ``.ci/run``) the
same absence is a failure, because CI has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def locate_shared() -> Path | None:
    env = os.environ.get("SCANWATCH_SHARED")
    candidate = Path(env) if env else REPO.parent / "shared"
    return candidate if (candidate / "DESIGN.md").is_file() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    found = locate_shared()
    if found is None:
        reason = "../shared (the Harbor spec and Trivy fixtures) is absent; set SCANWATCH_SHARED"
        if os.environ.get("SCANWATCH_REQUIRE_SHARED") == "1":
            pytest.fail(f"{reason}, and SCANWATCH_REQUIRE_SHARED=1 says it must be there")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def trivy_fixtures(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "trivy"


@pytest.fixture(scope="session")
def swagger_path(shared_dir: Path) -> Path:
    return shared_dir / "harbor" / "swagger.yaml"


@pytest.fixture
def make_sim():  # type: ignore[no-untyped-def]
    """A factory: ``make_sim(projects=2, scan_seconds=0.1)`` starts a Harbor simulator on a free
    port (``SimOptions`` keyword overrides); every one started is stopped at teardown."""
    from daemon.sim import SimOptions, start_simulator

    started = []

    def factory(**overrides):  # type: ignore[no-untyped-def]
        sim = start_simulator(SimOptions(**overrides))
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    """A real SMTP server on 127.0.0.1: ``(inbox, port)``; ``inbox.messages`` are the mails."""
    from mailkit import running_smtp

    with running_smtp() as server:
        yield server


@pytest.fixture(autouse=True, scope="session")
def _logging_as_the_command_line_sets_it():  # type: ignore[no-untyped-def]
    """Logging routed as ``scanwatch`` routes it (``log.configure``), from the first test on.
    Unconfigured, structlog prints every event, debug included, on stdout: a test that opens a
    store before it runs a command then read a log line in the command's output, or not,
    depending on which test its worker ran first."""
    from daemon import log

    log.configure("info")


@pytest.fixture(autouse=True)
def _forget_log_handlers():  # type: ignore[no-untyped-def]
    """A test that configures logging binds a handler to its captured stderr; drop it after
    the test so that threads still running (a simulator, apprise) do not write to a closed
    stream."""
    import logging

    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
