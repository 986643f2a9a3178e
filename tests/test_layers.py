"""The house: imports point down the layers, no cycle, and docs/architecture.md names every module.

Layers, bottom to top: core (the study as data) -> llm (model access) -> stages (generate,
train, evaluate, grade, tables) -> present (figures, tables, report, hub, human grading) ->
entry points (runner, grid, doctor, cli, the package's public API). Every import of the
package's own modules counts, function-local ones too.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "skillmix_utils"
LAYERS = ["core", "llm", "stages", "present", "entry"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS[:-1] else "entry"


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    edges = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import mod` imports mod; `from mod import name` imports mod
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                         else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != mod and name != "skillmix_utils":
                    edges[mod].add(name)
    return edges


def test_imports_point_down_the_layers():
    modules = _modules()
    up = sorted(f"{m} -> {t}" for m, ts in _imports(modules).items() for t in ts
                if LAYERS.index(_layer(t)) > LAYERS.index(_layer(m)))
    assert not up, "imports that point up a layer:\n" + "\n".join(up)


def test_no_import_cycle():
    edges = _imports(_modules())
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_no_private_name_crosses_a_module():
    modules = _modules()
    crossing = []
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skillmix_utils"):
                crossing += [f"{mod}: {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
    assert not crossing, "private names imported from other modules:\n" + "\n".join(crossing)


def test_architecture_doc_names_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [m for m, p in _modules().items()
               if p.name != "__init__.py" and p.relative_to(PKG).as_posix() not in doc]
    assert not missing, "docs/architecture.md does not name: " + ", ".join(sorted(missing))
