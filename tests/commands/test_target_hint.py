"""A target without its registry prefix, with one registry configured: `status` and `scan` say
the same line and suggest the full target (subprocesses; the mistake is caught before any
call to Harbor, so nothing listens at the registry's address)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runkit import REGISTRY, Cli, error_lines, write_config


@pytest.mark.parametrize(("target", "message"), [
    pytest.param("library/batch:1.0.0",
                 "target 'library/batch:1.0.0': expected registry/project/repository"
                 f"[:tag|@digest]; did you mean {REGISTRY}/library/batch:1.0.0?", id="tag"),
    pytest.param("library/team/app",
                 f"unknown registry 'library' (known: {REGISTRY}); did you mean "
                 f"{REGISTRY}/library/team/app?", id="nested-repository"),
])
def test_status_and_scan_suggest_the_full_target(tmp_path: Path, target: str,
                                                 message: str) -> None:
    cli = Cli(write_config(tmp_path, "http://127.0.0.1:9", "admin"), "secret")
    for command in ("status", "scan"):
        result = cli(command, target)
        assert result.returncode == 2, (command, result.stderr)
        assert error_lines(result) == [f"scanwatch: {message}"], command
