"""The layout docs/architecture.md describes, held against the code's own imports.

Every `import` in harness/ is read (those inside functions and under TYPE_CHECKING too: a cycle
through a lazy import is still a cycle). Importing `harness.a.b` counts as importing `harness.a`
(its `__init__` runs first). The table `MAY_IMPORT` is the "who may import what" of
docs/architecture.md: a new arrow between parts is a design decision, made in both places.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "harness"
MAX_LINES = 400
MAX_TOP_LEVEL = 12

# part -> the parts it may import. A part is a package under harness/ or a module directly in it.
FOUNDATION = {"errors", "text", "batches", "npzfile", "catalog", "metrics", "stats"}
CORE = FOUNDATION | {"layers", "spec", "data", "init"}
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(), "text": set(), "batches": set(), "npzfile": set(), "stats": set(),
    "catalog": {"errors"}, "metrics": {"errors"},
    "machine": {"errors"},
    "layers": {"errors"},
    "data": {"errors", "npzfile", "batches"},
    "spec": {"errors", "catalog", "layers", "data", "metrics"},
    "init": {"errors", "layers", "spec"},
    "engines": {"errors", "catalog", "batches", "spec"},  # the engines themselves by name, through importlib
    "scratch": CORE | {"onnx"},  # onnx for Network.save / from_onnx
    "reference": CORE | {"machine"},
    "onnx": CORE,
    "tracking": CORE | {"machine", "text", "onnx"},  # onnx: a logged model's signature, from onnxruntime
    "run": CORE | {"engines", "machine", "scratch", "onnx", "tracking", "text"},
    "report": CORE | {"tracking", "run", "machine", "perf", "text"},  # perf: the bench's speedup against perf's
    "perf": CORE | {"engines", "machine", "run", "tracking", "reference", "scratch", "onnx", "text"},
    "playground": CORE | {"engines", "run", "scratch", "tracking", "text"},  # scratch: hidden units' thumbnails
    "history": CORE | {"tracking", "run"},  # run: the steady epochs and the busy tag, as the bench defines them
    "cli": CORE | {"engines", "machine", "run", "tracking", "report", "perf", "playground", "history", "onnx",
                   "scratch"},
}
# a library that only one part may import: where it is heavy, optional, or must not leak
ONLY_IN = {"torch": {"reference"}, "mlflow": {"tracking"}, "onnxruntime": {"onnx"}, "ray": {"run"},
           "sklearn": {"perf"}}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imported(name: str, path: Path) -> set[str]:
    """Every module `name` imports, harness's and others', as dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules())
    return out


@cache
def graph() -> dict[str, set[str]]:
    """harness module -> the harness modules it imports, each import also reaching the packages above it."""
    mods = modules()
    edges = {}
    for name, path in mods.items():
        targets = set()
        for dotted in _imported(name, path):
            parts = dotted.split(".")
            for i in range(2, len(parts) + 1):  # harness.a, harness.a.b, ...: each __init__ on the way runs
                if ".".join(parts[:i]) in mods:
                    targets.add(".".join(parts[:i]))
        edges[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return edges


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def test_no_import_cycle_between_modules():
    edges, cycles = graph(), []
    index, low, stack, on = {}, {}, [], set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                on.discard(w)
                comp.append(w)
            on.discard(v)
            if comp:
                cycles.append(sorted([v, *comp]))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_over_400_lines_and_few_at_the_top():
    long = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
    top = [p.name for p in ROOT.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} modules directly under harness/: {sorted(top)}"


def test_every_part_imports_only_what_the_architecture_allows():
    parts = {part(m) for m in modules() if m != "harness"} - {"__main__"}
    assert parts == set(MAY_IMPORT), f"parts not in MAY_IMPORT (or gone): {parts ^ set(MAY_IMPORT)}"
    wrong = sorted(f"{m} imports {t}" for m, targets in graph().items() for t in targets
                   if m not in ("harness", "harness.__main__") and t != "harness" and part(t) != part(m)
                   and part(t) not in MAY_IMPORT[part(m)])
    assert not wrong, "imports docs/architecture.md does not allow:\n" + "\n".join(wrong)


def test_heavy_libraries_are_imported_by_their_own_part_only():
    wrong = sorted(f"{m} imports {lib}" for m, path in modules().items() for dotted in _imported(m, path)
                   if (lib := dotted.split(".")[0]) in ONLY_IN and part(m) not in ONLY_IN[lib])
    assert not wrong, "\n".join(wrong)
