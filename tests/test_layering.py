"""Data flows one way: every import inside the package points up the layer order, never down.

The order (README, "Layout of the code"): foundation (errors, atomic writes) → spec → process →
lowering → attention → nn → data → integrations → models → training → leaf systems → viz → cli.
The test reads the imports of every module, including those inside functions (a lazy import is
still a dependency), so a new upward edge fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "canvas_engineering"

# Rank of each top-level part of the package; a module may import only equal or lower ranks.
LAYERS = {
    "errors": 0, "atomic": 0,
    "spec": 1,
    "process": 2,
    "lowering": 3,
    "attention": 4,
    "nn": 5,
    "data": 6,
    "integrations": 7,
    "models": 8,
    "training": 9,
    "canvit": 10, "experiments": 10,  # leaf systems: nothing in core imports them
    "viz": 11,
    "cli": 12, "__main__": 12,
}

# The seed's `CanvasTopology.to_*_mask` methods are one-line calls into lowering.
ALLOWED = {("spec.topology", "lowering.masks")}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Modules of canvas_engineering that `path` imports (absolute or relative), as dotted names
    relative to the package."""
    found = set()
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(["canvas_engineering", *base, *([node.module] if node.module
                                                                    else [])])]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            if name == "canvas_engineering" or name.startswith("canvas_engineering."):
                found.add(name.removeprefix("canvas_engineering").lstrip("."))
    return found - {""}


def rank(module: str) -> int:
    top = module.split(".")[0]
    if top not in LAYERS:
        raise AssertionError(f"{module}: its folder {top!r} has no layer in LAYERS; add it")
    return LAYERS[top]


def upward_edges(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        me = module_name(path, package)
        if me == "":  # the package's __init__ re-exports every layer's public names
            continue
        for target in sorted(package_imports(path, package)):
            if rank(target) > rank(me) and (me, target) not in ALLOWED:
                bad.append(f"{me} (layer {rank(me)}) imports {target} (layer {rank(target)})")
    return bad


def test_no_module_imports_a_later_layer():
    assert upward_edges() == []


def test_every_folder_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        if module_name(path):
            rank(module_name(path))


def test_the_check_sees_relative_and_lazy_imports(tmp_path):
    # The same reader, on a tiny fake package: a function-level relative import of a later
    # layer must be reported.
    pkg = tmp_path / "canvas_engineering"
    (pkg / "spec").mkdir(parents=True)
    (pkg / "training").mkdir()
    (pkg / "spec" / "__init__.py").write_text("")
    (pkg / "training" / "loop.py").write_text("")
    (pkg / "spec" / "layout.py").write_text("def f():\n    from ..training import loop\n")
    assert upward_edges(pkg) == ["spec.layout (layer 1) imports training (layer 9)"]


@pytest.mark.parametrize("module", ["spec.topology"])
def test_the_allowed_edge_is_the_seed_mask_methods(module):
    path = PACKAGE / (module.replace(".", "/") + ".py")
    assert {t for t in package_imports(path) if rank(t) > rank(module)} == {"lowering.masks"}
