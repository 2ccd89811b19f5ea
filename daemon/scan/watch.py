"""What a run tells whoever watches it, besides each scan job (``on_progress(job)``).

A run's ``on_progress`` is a callable taking a :class:`~daemon.scan.queue.Job`; a watcher that
also wants the run's stages (a live display) has a ``stage(registry, stage, count)`` method too:

- ``walking`` (0): the registry's walk begins;
- ``walked`` (artifacts listed);
- ``imported`` (reports Harbor already had, now stored);
- ``selected`` (scans to trigger plus scans to follow).

Pure plumbing: no output here (the CLI's display is ``daemon/commands/_progress.py``).
"""

from __future__ import annotations

from typing import Any

STAGES = ("walking", "walked", "imported", "selected")


def tell(watcher: Any, registry: str, stage: str, count: int = 0) -> None:
    """Pass a stage to ``watcher`` when it listens for stages; a plain callable is left alone."""
    hook = getattr(watcher, "stage", None)
    if hook is not None:
        hook(registry, stage, count)
