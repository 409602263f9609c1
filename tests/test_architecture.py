"""The package's layering, checked on its source: argparse only in cli/, tools never import the notebook
layers, Lightning loaded by at most three modules, low layers import nothing higher, short functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tts_nb_utils"
NOTEBOOK_LAYERS = ("tts_nb_utils.demos", "tts_nb_utils.runner", "tts_nb_utils.cli")
LOW_LAYERS = ("tts_nb_utils.errors", "tts_nb_utils.io", "tts_nb_utils.parallel", "tts_nb_utils.device", "tts_nb_utils.audio")


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, top_level_only: bool = False) -> set[str]:
    """Absolute names of the modules ``name`` imports (``from . import x`` resolved; ``x`` kept when a module)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return found


def _is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_argparse_only_in_the_cli_layer():
    users = sorted(m for m in MODULES if "argparse" in _imports(m))
    assert users and all(_is_under(m, ("tts_nb_utils.cli",)) for m in users), users


def test_tools_never_import_demos_runner_or_cli():
    tools = [m for m in MODULES if not _is_under(m, NOTEBOOK_LAYERS) and m != "tts_nb_utils"]
    bad = {m: sorted(i for i in _imports(m) if _is_under(i, NOTEBOOK_LAYERS)) for m in tools}
    assert not {m: v for m, v in bad.items() if v}


def test_low_layers_import_nothing_higher():
    for m in (m for m in MODULES if _is_under(m, LOW_LAYERS)):
        internal = {i for i in _imports(m) if i.startswith("tts_nb_utils")}
        assert all(_is_under(i, LOW_LAYERS) for i in internal), (m, sorted(internal))


def _loads_on_import(target: str) -> set[str]:
    """Package modules whose import (module-level imports, followed through the package) loads ``target``."""
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    for m in MODULES:  # importing a submodule imports its parent packages first
        parent = m.rpartition(".")[0]
        if parent in MODULES:
            graph[m].add(parent)
    loads: set[str] = set()
    changed = True
    while changed:
        changed = False
        for m, deps in graph.items():
            if m not in loads and any(_is_under(d, (target,)) or d in loads for d in deps):
                loads.add(m)
                changed = True
    return loads


@pytest.mark.parametrize("framework, allowed", [
    ("lightning", {"tts_nb_utils.monitors.lightning", "tts_nb_utils.demos.nb03_variance_task"}),
    ("trainer", {"tts_nb_utils.demos.nb04_toy_model"}),
])
def test_frameworks_are_loaded_only_by_their_adapters_and_demos(framework, allowed):
    loads = _loads_on_import(framework)
    assert loads == allowed and len(loads) <= 3, sorted(loads)


def test_no_function_over_80_lines():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long


def test_every_module_says_what_it_is_for():
    missing = [m for m, p in MODULES.items() if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert not missing, missing
