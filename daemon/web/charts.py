"""Trend charts as SVG, drawn on the server by pygal (no script, no remote font or style)."""

from __future__ import annotations

from datetime import date, timedelta

import pygal
from pygal.style import Style

from daemon.model import Severity

_COLOURS = {Severity.CRITICAL: "#8b0000", Severity.HIGH: "#d9480f", Severity.MEDIUM: "#e8a317",
            Severity.LOW: "#4a7fb5", Severity.UNKNOWN: "#888888", Severity.NONE: "#bbbbbb"}
_SHOWN = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.UNKNOWN)


def _config(title: str) -> dict[str, object]:
    style = Style(colors=tuple(_COLOURS[s] for s in _SHOWN), font_family="sans-serif",
                  background="white", plot_background="white")
    # js=[]: pygal would otherwise reference its tooltip script on a remote host.
    return {"title": title, "style": style, "js": [], "disable_xml_declaration": True,
            "width": 800, "height": 320, "explicit_size": True}


def open_findings(days: list[date], counts: dict[Severity, list[int]]) -> str:
    chart = pygal.StackedLine(fill=True, show_dots=False, x_label_rotation=30,
                              show_minor_x_labels=False, **_config("Open findings"))
    chart.x_labels = [d.isoformat() for d in days]
    chart.x_labels_major = chart.x_labels[::max(1, len(days) // 8)]
    for sev in _SHOWN:
        chart.add(sev.label, counts.get(sev, [0] * len(days)))
    return str(chart.render(is_unicode=True))


def time_to_fix(medians: dict[Severity, tuple[timedelta, int]]) -> str:
    chart = pygal.HorizontalBar(**_config("Median days to fix (resolved in the window)"))
    for sev in _SHOWN:
        span, n = medians.get(sev, (timedelta(0), 0))
        chart.add(f"{sev.label} ({n})", [round(span / timedelta(days=1), 1) if n else None])
    return str(chart.render(is_unicode=True))
