"""The store's shape (issue 11): modules of functions per aggregate and a thin Store, no mixins,
no private names imported across files, no import cycle inside daemon/store/, and the store
typed where callers take it (never ``Any``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from daemon.store.db import Store

ROOT = Path(__file__).resolve().parents[2] / "daemon"
STORE = ROOT / "store"


def _store_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module under daemon.store, names imported) for each import of another store module."""
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [a.name for a in node.names]
            if node.module == "daemon.store":
                out.extend((f"daemon.store.{n}", []) for n in names)
            elif node.module.startswith("daemon.store."):
                out.append((node.module, names))
    return out


def test_no_import_cycle_inside_the_store() -> None:
    graph = {f"daemon.store.{p.stem}": {m.split(".")[2] and ".".join(m.split(".")[:3])
                                        for m, _ in _store_imports(p)}
             for p in STORE.glob("*.py")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_no_private_name_imported_across_files() -> None:
    offenders = [f"{p.relative_to(ROOT.parent)}: {m}.{n}"
                 for p in ROOT.rglob("*.py") for m, names in _store_imports(p)
                 for n in names if n.startswith("_")]
    assert offenders == []


def test_store_is_one_plain_class() -> None:
    assert Store.__bases__ == (object,)
    assert not [p.name for p in STORE.glob("*.py") if "Mixin" in p.read_text()]


def test_callers_type_the_store() -> None:
    untyped = [f"{p.relative_to(ROOT.parent)}:{n}: {line.strip()}"
               for p in ROOT.rglob("*.py")
               for n, line in enumerate(p.read_text().splitlines(), 1)
               if re.search(r"\bstore\w*: Any\b", line)]
    assert untyped == []
