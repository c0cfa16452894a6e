"""The shape of the package (docs/architecture.md): layers, sizes, no private names shared.

These are checks on the source, not style preferences: an upward import makes a cycle
possible, a private name imported elsewhere is an interface nobody promised, and a module of
many jobs is where the near-copies this project removed came from.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tabtune"

#: Top-level units from the bottom up; a unit imports only from its own layer or below.
LAYERS: list[set[str]] = [
    {"errors", "optional", "atomic", "params", "progress", "integrity", "safe_yaml", "memory"},
    {"builtin_tasks", "config_section"},
    {"config", "data"},
    {"spend_features", "features"},
    {"evaluation"},
    {"boosting"},
    {"leaf_cache"},
    {"transfer"},
    {"estimators"},
    {"model_factory"},
    {"registry", "task_definition"},
    {"tasks"},
    {"pipeline", "distributed"},
    {"tuning"},
    {"parallel", "report"},
    {"refresh"},
    {"cli", "__main__"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}

MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80
#: A module or function may be longer when its docstring says why.
REASON = "long because"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if rel.parts[0] != "__init__" else ""


def _tabtune_imports(tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every ``tabtune`` import, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tabtune" or node.module.startswith("tabtune."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tabtune."):
                    found.append((node.lineno, alias.name, []))
    return found


def _imported_units(module: str, names: list[str]) -> list[str]:
    parts = module.split(".")
    if len(parts) > 1:
        return [parts[1]]
    return [n for n in names if n in LAYER_OF]  # from tabtune import evaluation


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in _modules()} - {""}
    assert units <= set(LAYER_OF), f"add {sorted(units - set(LAYER_OF))} to LAYERS and the doc"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path: Path) -> None:
    unit = _unit(path)
    if unit not in LAYER_OF:
        return  # the package root re-exports the public API
    upward = []
    for line, module, names in _tabtune_imports(ast.parse(path.read_text(encoding="utf-8"))):
        for other in _imported_units(module, names):
            if LAYER_OF[other] > LAYER_OF[unit]:
                upward.append(f"line {line}: {unit} imports {other}")
    assert not upward, upward


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_names_across_modules(path: Path) -> None:
    private = [
        f"line {line}: from {module} import {name}"
        for line, module, names in _tabtune_imports(ast.parse(path.read_text(encoding="utf-8")))
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private, private


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    too_long = []
    n_lines = len(text.splitlines())
    if n_lines > MAX_MODULE_LINES and REASON not in (ast.get_docstring(tree) or ""):
        too_long.append(f"module: {n_lines} lines")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and REASON not in (ast.get_docstring(node) or ""):
                too_long.append(f"{node.name} (line {node.lineno}): {length} lines")
    assert not too_long, f"split these, or say why in the docstring ({REASON!r}): {too_long}"


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The parsers above see what they are meant to see."""
    tree = ast.parse(
        "from tabtune.refresh import _x\nimport tabtune.cli\nfrom tabtune import evaluation\n"
    )
    found = _tabtune_imports(tree)
    assert [m for _, m, _ in found] == ["tabtune.refresh", "tabtune.cli", "tabtune"]
    assert _imported_units("tabtune", ["evaluation", "__version__"]) == ["evaluation"]
    assert LAYER_OF["cli"] > LAYER_OF["refresh"] > LAYER_OF["transfer"] > LAYER_OF["boosting"]
