"""The package's layers, bottom to top, and a walk over every import that enforces them.

A module may import from its own layer or any layer below, never from one above, and the
imports between modules form no circle. Imports count wherever they stand (module level or
inside a function: a lazy import only defers loading, it does not remove the dependency), and
so do modules named by string ("rnem_bench.x.y" or "rnem_bench.x.y:attr", as the CLI and the
generator registry load them). No module is an alias that only re-exports another's names (there
are no old imports to keep working). docs/design.md ("Layers") explains the order.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Bottom to top. An entry names a module or a package (its submodules included); the longest
# entry that matches wins. "*.commands" (click commands) and "*.cli_options" belong to the CLI.
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["rnem_bench.__init__", "rnem_bench.errors", "rnem_bench.paths", "rnem_bench.io", "rnem_bench.device",
              "rnem_bench.graphs", "rnem_bench.signals", "rnem_bench.cli_tools", "rnem_bench.dataset_format",
              "rnem_bench.protocol"]),
    ("games", ["rnem_bench.dqn", "rnem_bench.policies"]),          # the DQN that plays, its shipped weights
    ("generators", ["rnem_bench.generators"]),
    ("tasks", ["rnem_bench.recipes", "rnem_bench.tasks"]),          # dataset recipes and the benchmark's tasks
    ("data and models", ["rnem_bench.data", "rnem_bench.models", "rnem_bench.metrics"]),
    ("training", ["rnem_bench.training"]),
    ("pretrained", ["rnem_bench.pretrained"]),                      # the shipped trained model
    ("evaluation", ["rnem_bench.evaluation"]),
    ("leaderboard", ["rnem_bench.leaderboard"]),
    ("reproduce", ["rnem_bench.reproduce"]),
    ("cli", ["rnem_bench.cli", "rnem_bench.demo", "*.commands", "*.cli_options"]),
]


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``generators/`` imports as rnem_bench.generators);
    a package's own code is named ``<package>.__init__``."""
    found = {}
    for folder, package in ((REPO / "rnem_bench", "rnem_bench"), (REPO / "generators", "rnem_bench.generators")):
        for path in folder.rglob("*.py"):
            found[".".join([package, *path.relative_to(folder).with_suffix("").parts])] = path
    return found


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if entry.startswith("*."):
                matched, length = module.endswith(entry[1:]), 10_000
            else:
                matched, length = module == entry or module.startswith(entry + "."), len(entry)
            if matched and length > best_len:
                best, best_len = index, length
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module a dotted name refers to (a module, a package's __init__, or a name inside one)."""
    while name:
        for candidate in (name, name + ".__init__"):
            if candidate in known:
                return candidate
        name = name.rpartition(".")[0]
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports, by statement or by string."""
    package = module.rpartition(".")[0] if not module.endswith(".__init__") else module[: -len(".__init__")]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from pkg import module` names the module; `from m import name`, m
                full = f"{base}.{alias.name}"
                names.append(full if full in known or full + ".__init__" in known else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("rnem_bench."):
            names.append(node.value.split(":")[0])
    found = {_resolve(n, known) for n in names if n.startswith("rnem_bench")}
    return {m for m in found if m is not None and m != module}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(m, p, known) for m, p in known.items()}


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_module_imports_from_a_layer_above():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) -> {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in graph().items() for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def aliases() -> list[str]:
    """The modules whose code, past the docstring, is only imports of package names: aliases."""
    found = []
    for module, path in modules().items():
        body = ast.parse(path.read_text(), str(path)).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        body = [node for node in body if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
        if body and all(isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("rnem_bench"))
                        for node in body):
            found.append(module)
    return found


def test_no_alias_modules():
    found = aliases()
    assert not found, "modules that only re-export another's names (import from the original):\n" + "\n".join(found)


def test_the_walk_sees_lazy_and_string_imports():
    g = graph()
    assert "rnem_bench.training.commands" in g["rnem_bench.cli"]            # by string, for the lazy CLI
    assert "rnem_bench.generators.invaders" in g["rnem_bench.generators.__init__"]  # the registry's strings
    assert "rnem_bench.models.__init__" in g["rnem_bench.training.resolve"]     # inside a function
