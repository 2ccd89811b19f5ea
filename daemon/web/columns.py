"""Extra finding columns for the pages: the hook for prioritisation data (KEV, EPSS).

Each column is a header and a function of a ``store.findings.FindingRow`` returning the cell's
text ("" for none). The findings, image and fix-first tables render every column listed here
after their own; the prioritisation issue (#14, ``daemon/intel/``) appends KEV and EPSS here
once the rows carry them. Cells are escaped like every other value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Column = tuple[str, Callable[[Any], str]]

COLUMNS: list[Column] = []
