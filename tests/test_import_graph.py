"""The import graph of src/convnets, read from the source with ast: no cycle, and every import
points down the layers below (or stays in its layer). Imports under ``if TYPE_CHECKING:`` are
type hints only and are not counted; imports inside functions are (a cycle through a lazy
import is still a cycle in the design)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "convnets"

#: Lower numbers are lower layers; a module may import its own layer or a lower one. A module
#: not listed takes its package's layer (convnets.models.plain: "convnets.models"); a new
#: top-level module takes DEFAULT_LAYER (analysis tools beside interpret): list it here if it
#: belongs lower.
LAYERS: dict[str, int] = {
    "convnets": 0,  # the root package imports nothing
    "convnets.utils": 0,
    "convnets.data": 1,
    "convnets.norm": 1,
    "convnets.init": 1,
    "convnets.flops": 1,
    "convnets.receptive": 1,
    "convnets.plots": 1,
    "convnets.models": 1,
    "convnets.augment": 1,  # below train: tta_predict uses convnets.utils, never train's internals
    "convnets.train": 2,
    "convnets.transfer": 2,
    "convnets.interpret": 2,
    "convnets.experiments": 3,
    "convnets.explore": 3,
    "convnets.claims": 3,
    "convnets.widgets": 3,
    "convnets.grading": 3,
}
DEFAULT_LAYER = 2


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(id(n) for n in ast.walk(sub))
    return skip


def import_graph() -> dict[str, set[str]]:
    """``{module: {modules of convnets it imports}}``; ``from pkg import sub`` counts as an import
    of ``pkg.sub`` when ``sub`` is a module."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree)
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "convnets")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "convnets":
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    deps.add(sub if sub in modules else target)
        graph[name] = {d for d in deps if d != name}
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in LAYERS and (i > 1 or module == "convnets"):
            return LAYERS[key]
    return DEFAULT_LAYER


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_graph_is_read():
    g = import_graph()
    assert "convnets.utils" in g["convnets.train"], "train imports utils"
    assert "convnets.receptive" in g["convnets.interpret"], "interpret re-exports the tracer"
    assert "convnets.models._base" in g["convnets.models.resnet"]


def test_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_upward_import():
    g = import_graph()
    up = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
          for m, deps in sorted(g.items()) for d in sorted(deps)
          if layer(d) > layer(m) and not d.startswith(m + ".")]  # a package may import its own modules
    assert not up, "upward imports:\n" + "\n".join(up)


def test_augment_does_not_import_train():
    assert "convnets.train" not in import_graph()["convnets.augment"]


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_find_cycle_finds_cycles(graph, cycle):
    assert find_cycle(graph) == cycle


def test_every_module_imports():
    """A smoke test that covers every module in the fast loop (the experiments' runs are slow)."""
    import importlib

    for name in sorted(_modules()):
        if name.endswith("__main__"):
            continue
        importlib.import_module(name)
