"""The words of lineage in alerts and outputs: the rebuild that fixes most, each action's source.

"Rebuild on base/debian:12.8 (pushed 3 days ago; you build 14 images on base/debian:12.5):
fixes 41 CVEs (3 Critical) across those images"; an action from the base says so; one added by
the image's own layers says "In your layers" with the build step that added it.
"""

from __future__ import annotations

from datetime import datetime

from daemon.alerts import wording as w
from daemon.alerts.message import Action, Rebuild


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return ""
    days = max(0, (now - then).days)
    return "pushed today" if days == 0 else f"pushed {days} day{'s' if days != 1 else ''} ago"


def rebuild_line(r: Rebuild, now: datetime) -> str:
    pushed = _ago(r.pushed_at, now)
    n = len(r.images)
    why = f"{pushed}; " if pushed else ""
    counts = ", ".join(f"{c} {s.label}" for s, c in r.severity_counts())
    return (f"Rebuild on {w.one_line(r.rebuild_on)} ({why}you build {n} image"
            f"{'s' if n != 1 else ''} on {w.one_line(r.base_image)}): fixes "
            f"{len(r.vulnerabilities)} CVE{'s' if len(r.vulnerabilities) != 1 else ''} "
            f"({counts}) across those images")


def rebuild_images(r: Rebuild) -> str:
    names = [n for i in r.images for n in w.image_names(i)]
    more = f" (and {len(names) - w.MAX_IMAGES} more)" if len(names) > w.MAX_IMAGES else ""
    return ", ".join(names[: w.MAX_IMAGES]) + more


def source_line(a: Action) -> str:
    """Where the action's package comes from, or "" when lineage does not say."""
    if a.source == "base":
        also = f"; rebuild on {w.one_line(a.rebuild_on)}" if a.rebuild_on else \
            f"; upgrade {w.one_line(a.package)} in {w.one_line(a.base_image)} itself"
        return f"From the base image {w.one_line(a.base_image)}{also}"
    if a.source == "own":
        step = f" (`{w.one_line(a.step, w.MAX_DETAIL)}`)" if a.step else ""
        return f"In your layers: added by your own build{step}"
    if a.source == "unknown" and a.base_image:
        return f"Base: {w.one_line(a.base_image)}"
    return ""
