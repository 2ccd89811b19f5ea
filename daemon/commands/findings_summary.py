"""`scanwatch findings --by action | --by image`: what to fix first, in one screen.

``--by action`` groups the open findings into one upgrade per (package, installed version)
through ``daemon/remedy.py`` ``plan()``, the grouping alerts and ``report show --by action``
use, and prints exactly that command's JSON; the findings are counted in SQL
(``store/actions.py``) unless a filter decided per finding (``--overdue``, ``--kev``,
``--min-epss``) needs each read. ``--by image`` counts the open findings of each
repository per severity, worst first. Both read the findings in one pass (actions a batch of
repositories at a time, with the versions their images carry) and keep only their groups,
whatever the size of the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from daemon.commands._common import print_json, print_table

if TYPE_CHECKING:
    from daemon.lineage.advice import Advisor
    from daemon.remedy import Remedy
    from daemon.store.db import Store
    from daemon.store.findings import FindingHead, FindingRow


def lineage_of(store: Store) -> Callable[[str], Advisor]:
    """Each registry's lineage, read from history once, when first asked for."""
    from daemon.lineage.fetch import advisor

    found: dict[str, Advisor] = {}

    def get(registry: str) -> Advisor:
        if registry not in found:
            found[registry] = advisor(store, registry)
        return found[registry]
    return get


def lineage_for(store: Store) -> Callable[[str, set[str]], Advisor]:
    """The lineage of some images of a registry, read when asked for (``finding_actions``)."""
    from daemon.lineage.fetch import advisor

    return lambda registry, digests: advisor(store, registry, digests=digests)


def actions(batches: Iterable[list[FindingRow]], fmt: str,
            lineage: Callable[[str], Advisor] | None = None, store: Store | None = None) -> int:
    from daemon.remedy import plan_findings

    return print_plan(plan_findings(batches, lineage), fmt, store)


def print_plan(plan: list[Remedy[Any]], fmt: str, store: Store | None = None) -> int:
    """The plan as ``report show --by action`` prints one, with what the KEV and EPSS copies
    in force (``store``) say of its CVEs: known exploited first, and each action's reach the
    repositories that carry it."""
    from daemon.commands.report_actions import print_actions

    exploit = None
    if store is not None:
        from daemon.store import intel as store_intel

        with store.engine.connect() as conn:
            exploit = store_intel.exploit_info(
                conn, {v.id for r in plan for v in r.vulnerabilities})
    return print_actions("open findings", plan, fmt if fmt == "json" else "table", exploit,
                         _reach)


def _reach(r: Any) -> int:
    """The repositories an action of the plan is found in."""
    return len(set().union(*(m.repositories for m in r.members)))


def images(heads: Iterable[FindingHead], fmt: str) -> int:
    from daemon.model import Severity

    counts: dict[tuple[str, str, str], dict[str, Any]] = {}
    for h in heads:
        where = (h.key.registry, h.key.project, h.key.repository)
        slot = counts.get(where)
        if slot is None:
            slot = counts[where] = {
                "image": "/".join(where), "registry": where[0], "project": where[1],
                "repository": where[2], "findings": 0, "fixable": 0,
                "severities": {s.label: 0 for s in sorted(Severity, reverse=True)}}
        slot["findings"] += 1
        slot["fixable"] += bool(h.fix_version)
        slot["severities"][h.severity.label] += 1
    order = [s.label for s in sorted(Severity, reverse=True)]
    rows = sorted(counts.values(), key=lambda x: (
        [-x["severities"][label] for label in order], -x["fixable"], x["image"]))
    if fmt == "json":
        print_json(rows)
        return 0
    if not rows:
        print("No open findings.")
        return 0
    print_table(("IMAGE", *(label.upper() for label in order), "FIXABLE", "TOTAL"),
                ((x["image"], *(x["severities"][label] for label in order), x["fixable"],
                  x["findings"]) for x in rows))
    return 0
