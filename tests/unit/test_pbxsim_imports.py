"""pbxsim's modules import each other without a loop (issue 8), each imports alone, and
none imports callserver (a peer sharing our parser would hide its bugs).

The graph is read from the source with ``ast``: every runtime import (module level or
inside a function) counts; imports under ``if TYPE_CHECKING:`` do not, since they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "pbxsim"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Every imported module name, skipping ``if TYPE_CHECKING:`` bodies."""
    out: list[str] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found = [s for s in subs if s in MODULES]  # `from pkg import submodule`
            out.extend(found if len(found) == len(subs) else [node.module, *found])
        stack.extend(ast.iter_child_nodes(node))
    return out


def import_graph() -> dict[str, set[str]]:
    return {
        name: {m for m in _runtime_imports(ast.parse(path.read_text())) if m in MODULES}
        for name, path in MODULES.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path ``[a, b, …, a]``; empty if the graph has none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(v: str) -> list[str]:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return [*path[path.index(w) :], w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return []

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return []


def test_find_cycle_reports_a_loop_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_queue_flow_modules_use_the_shared_helpers_not_each_other() -> None:
    graph = import_graph()
    assert "pbxsim.queue_call" not in graph["pbxsim.talk"]
    assert "pbxsim.queue_call" not in graph["pbxsim.local_member"]
    assert "pbxsim.talk" not in graph["pbxsim.local_member"]
    for flow in ("pbxsim.talk", "pbxsim.local_member", "pbxsim.queue_call"):
        assert "pbxsim.queue_events" in graph[flow]
    assert not graph["pbxsim.queue_events"] & {
        "pbxsim.talk",
        "pbxsim.local_member",
        "pbxsim.queue_call",
    }


def test_pbxsim_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle == [], "import loop: " + " -> ".join(cycle)


def test_pbxsim_imports_nothing_from_callserver() -> None:
    bad = {
        name: sorted(m for m in _runtime_imports(ast.parse(path.read_text())) if "callserver" in m)
        for name, path in MODULES.items()
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_each_pbxsim_module_imports_alone() -> None:
    """Each module in a clean interpreter state (pbxsim.* dropped from sys.modules)."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    for m in [m for m in sys.modules if m == 'pbxsim' or m.startswith('pbxsim.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
