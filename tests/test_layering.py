"""The package's layering, as docs/architecture.md draws it: each part imports only the parts
below it (read from the source, every import statement, lazy ones inside functions too), the
layers have no cycle, and the whole core imports without Qt or napari."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_scalespace"

LAYERS: dict[str, set[str]] = {
    "geometry": set(),
    "ops": set(),
    "_allocator": set(),
    "model": {"geometry", "ops"},
    "checkpoint": {"model"},
    "run_lock": {"checkpoint"},
    "data": {"geometry", "checkpoint"},
    "train": {"geometry", "ops", "model", "checkpoint", "run_lock", "data"},
    "render": {"geometry", "model", "checkpoint", "data"},
    "eval": {"geometry", "checkpoint", "data", "render"},
    "reader": {"render"},
    "writer": {"geometry", "render"},
    "sample_data": {"data", "reader"},
}
"""What each part of the core may import (besides the package root's ``__version__``). The
command line and the napari face (``_widgets``) stand on top and may import any of them."""

TOP = {"cli", "_widgets", "__main__"}
QT = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt")


def _modules() -> list[Path]:
    """The package's modules (files in folders without ``__init__.py``, such as the sample
    data's scripts, are not part of it)."""
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if all((d / "__init__.py").is_file()
                         for d in p.parents if d.is_relative_to(PACKAGE)))


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_parts(path: Path) -> set[str]:
    """The package's parts that a module imports (relative imports resolved)."""
    rel = path.relative_to(PACKAGE)
    here = list(rel.parts[:-1])  # the module's package, relative to the root
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                target = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").split(".")[0] == "napari_scalespace":
                target = node.module.split(".")[1:]
            else:
                continue
            targets = [target] if target else [[a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1:] for a in node.names
                       if a.name.split(".")[0] == "napari_scalespace"]
        for target in targets:
            if target and target[0] != "__version__":
                found.add(target[0])
    return found - {_part(path)}


def test_each_part_imports_only_the_parts_below_it():
    wrong = []
    for path in _modules():
        part = _part(path)
        if part in TOP or part == "__init__":
            continue
        assert part in LAYERS, f"{path.relative_to(PACKAGE)}: add its part to LAYERS"
        for other in sorted(_imported_parts(path) - LAYERS[part]):
            wrong.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert wrong == [], "imports against the layering:\n" + "\n".join(wrong)


def test_the_layers_have_no_cycle_and_the_reader_finds_imports():
    order: list[str] = []
    pending = dict(LAYERS)
    while pending:
        ready = [p for p, deps in pending.items() if deps <= set(order)]
        assert ready, f"a cycle among {sorted(pending)}"
        order += sorted(ready)
        for p in ready:
            del pending[p]
    # the reader sees relative, absolute and function-local imports
    assert _imported_parts(PACKAGE / "model" / "memory.py") == {"geometry"}  # from ..geometry
    assert "_allocator" in _imported_parts(PACKAGE / "cli" / "train.py")  # inside a function


def test_the_whole_core_imports_without_qt_or_napari():
    modules = sorted(
        "napari_scalespace." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for p in _modules() if _part(p) not in {"_widgets", "__main__"} and p.name != "__init__.py")
    code = ("import sys, importlib\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert len(modules) > 50
    assert ast.literal_eval(out.strip().splitlines()[-1]) == []
