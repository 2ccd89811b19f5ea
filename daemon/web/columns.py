"""Extra columns for the pages' tables: what CISA KEV and FIRST EPSS say (``daemon/intel/``).

Each column is a header and a function of a row and the page's exploit data (CVE id →
``model.ExploitInfo``, from the feed copies in force: ``store.intel.exploit_info``) returning
the cell's text ("" for none). ``COLUMNS`` follow the findings and image tables' own
(``store.findings.FindingRow`` rows); ``ACTION_COLUMNS`` the "Fix first" table's
(``remedy.Remedy`` rows: what its vulnerabilities say together, ``remedy.exploit_of``). Cells
are text, escaped like every other value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from daemon.model import NO_EXPLOIT_INFO, ExploitInfo
from daemon.remedy import exploit_of

Exploit = Mapping[str, ExploitInfo]
Column = tuple[str, Callable[[Any, Exploit], str]]


def kev_text(listed: bool, due: date | None) -> str:
    """"KEV, due 2025-09-08" for a CVE in CISA's catalog (its due date, where it has one)."""
    if not listed:
        return ""
    return f"KEV, due {due.isoformat()}" if due else "KEV"


def epss_text(score: float | None, percentile: float | None) -> str:
    """"0.943 (99.9th percentile)": the probability of exploitation in the next 30 days."""
    if score is None:
        return ""
    if percentile is None:
        return f"{score:.3f}"
    return f"{score:.3f} ({percentile * 100:.1f}th percentile)"


def _finding(row: Any, exploit: Exploit) -> ExploitInfo:
    return exploit.get(row.key.vulnerability, NO_EXPLOIT_INFO)


COLUMNS: list[Column] = [
    ("KEV", lambda f, x: kev_text(_finding(f, x).kev, _finding(f, x).due_date)),
    ("EPSS", lambda f, x: epss_text(_finding(f, x).epss, _finding(f, x).epss_percentile)),
]

ACTION_COLUMNS: list[Column] = [
    ("KEV", lambda r, x: kev_text(exploit_of(r, x).kev, exploit_of(r, x).due_date)),
    ("EPSS", lambda r, x: epss_text(exploit_of(r, x).epss, exploit_of(r, x).epss_percentile)),
]
