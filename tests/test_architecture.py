"""The shape docs/architecture.md promises, read from the source alone (nothing imported): layers,
no import cycles, few top-level modules, short functions, no private imports across modules, and
no task-name comparison outside dltrain/tasks/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dltrain"
TASK_NAMES = ("har", "retina")
# Each package and the dltrain packages it may import (docs/architecture.md, "Layers").
ALLOWED = {
    "core": set(),
    "networks": {"core"},
    "reporting": {"core"},
    "data": {"core"},
    "config": {"core", "networks", "training"},  # names checked against the builder registries
    "tasks": {"core", "config", "data", "networks"},
    "training": {"core", "config", "data", "networks", "tasks", "runs"},
    "runs": {"core", "config", "data", "networks", "tasks", "reporting", "training"},
    "inference": {"core", "data", "tasks", "runs"},
    "lab": {"core", "config", "data", "tasks", "training", "runs", "reporting"},
    "cli": {"core", "config", "data", "tasks", "training", "runs", "inference", "lab", "reporting"},
}
# The order of the layers, lowest first; an import into a higher layer must be one of the few
# module-level edges below, which the layers allow by design.
ORDER = list(ALLOWED)
UPWARD = {
    ("dltrain.config.schema", "dltrain.training.optimizers"),  # optimizer names checked against the registry
    ("dltrain.training.session", "dltrain.runs.rundir"),  # the session writes the run folder
    ("dltrain.training.session", "dltrain.runs.scoring"),  # and scores the kept model into it
    ("dltrain.training.building", "dltrain.runs.rundir"),  # file names of the run folder
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("dltrain", *path.relative_to(PACKAGE).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every `from dltrain... import` in module `name`."""
    found = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dltrain"):
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def package_of(module: str) -> str:
    parts = MODULES[module].relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "(top)"


def edges() -> dict[str, set[str]]:
    graph = {name: set() for name in MODULES}
    for name in MODULES:
        for module, names, _ in imports(name):
            targets = [module] + [f"{module}.{alias}" for alias in names]
            graph[name] |= {
                target
                for target in targets
                if target in MODULES and target != name and not name.startswith(target + ".")
            }
    return graph


def test_packages_import_only_their_lower_layers():
    wrong = []
    for name, targets in edges().items():
        source = package_of(name)
        for target in targets:
            destination = package_of(target)
            if source not in ALLOWED or destination not in ALLOWED or destination == source:
                continue
            if destination not in ALLOWED[source]:
                wrong.append(f"{name} -> {target}")
            elif ORDER.index(destination) > ORDER.index(source) and (name, target) not in UPWARD:
                wrong.append(f"{name} -> {target} (upward)")
    assert not wrong, wrong


def test_no_import_cycles():
    graph, order, low, stack, on_stack, cycles = edges(), {}, {}, [], set(), []

    def visit(node):
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in order:
            visit(node)
    assert not cycles, cycles


def test_few_modules_at_the_top():
    top = [path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= 8, top


def test_no_function_over_60_lines():
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1})"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long


def test_no_private_name_is_imported_across_modules():
    private = [
        f"{name}:{line} imports {module}.{alias}"
        for name in MODULES
        for module, names, line in imports(name)
        for alias in names
        if alias.startswith("_") and not alias.endswith("__") and module != name
    ]
    assert not private, private


@pytest.mark.parametrize("task", TASK_NAMES)
def test_no_task_name_is_compared_outside_the_tasks_package(task):
    found = []
    for name, tree in TREES.items():
        if name.startswith("dltrain.tasks"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(
                isinstance(part, ast.Constant) and part.value == task for part in [node.left, *node.comparators]
            ):
                found.append(f"{name}:{node.lineno}")
    assert not found, found


def test_help_imports_no_tensorflow_at_module_level():
    """`dltrain --help` imports the cli package and what its modules import at the top."""
    heavy = []
    for name, tree in TREES.items():
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(module.split(".")[0] in ("tensorflow", "keras", "jax") for module in names) and name.startswith(
                    "dltrain.cli"
                ):
                    heavy.append(name)
    assert not heavy, heavy
