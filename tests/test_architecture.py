"""The shape docs/architecture.md promises, read from the source alone (nothing imported): layers,
no import cycles, few top-level modules, short functions, no private imports across modules, and
no task-name comparison outside dltrain/tasks/."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dltrain"
# The task folders: every package directly under dltrain/tasks/ is one task.
TASK_NAMES = tuple(sorted(path.parent.name for path in (PACKAGE / "tasks").glob("*/__init__.py")))
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def layer_table() -> dict[str, set[str]]:
    """docs/architecture.md's table of layers, lowest first: each package and the dltrain packages it
    may import. The page states the rule; the tests below enforce it."""
    rows = re.findall(r"^\| `(\w+)/` \| .* \| ([^|]+) \|$", DOC.read_text(), flags=re.MULTILINE)
    return {
        name: set() if imports.strip() == "nothing" else {part.strip() for part in imports.split(",")}
        for name, imports in rows
    }


ALLOWED = layer_table()
# The order of the layers, lowest first: every import goes downwards (or within a package).
ORDER = list(ALLOWED)


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("dltrain", *path.relative_to(PACKAGE).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every `from dltrain... import` and `import dltrain...` in
    module `name`, at module level or inside a function."""
    found = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dltrain"):
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.startswith("dltrain.")]
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
            elif ORDER.index(destination) > ORDER.index(source):
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


def test_task_folders_are_the_registered_tasks():
    from dltrain.tasks import TASKS

    assert {"har", "retina"} <= set(TASK_NAMES) <= set(TASKS.names())  # plugins installed here may add more


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_task_is_one_folder_that_no_other_module_imports(task):
    """What the task has lives in dltrain/tasks/<task>/ (its Task, meta.json schema and prepare
    command), and only its own folder imports it: the registry reaches it through import paths."""
    from dltrain.data.registries import META_TYPES
    from dltrain.tasks import CARDS, TASKS

    folder = f"dltrain.tasks.{task}"
    parts = [type(TASKS.get(task)), META_TYPES.get(task), CARDS.get(task).prepare]
    assert all(part.__module__.startswith(folder + ".") for part in parts), [part.__module__ for part in parts]
    outside = [
        f"{name}:{line}"
        for name in MODULES
        if not name.startswith(folder) and name != "dltrain.tasks"
        for module, _, line in imports(name)
        if module == folder or module.startswith(folder + ".")
    ]
    assert not outside, f"modules outside {folder} import it: {outside}"


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


def test_the_layer_table_names_every_package_and_only_lower_layers():
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert set(ALLOWED) == packages, "docs/architecture.md's layer table and dltrain/'s packages differ"
    for position, (name, imports) in enumerate(ALLOWED.items()):
        assert imports <= set(ORDER[:position]), (
            f"{name} may import a layer above it: {imports - set(ORDER[:position])}"
        )


def resolves(dotted: str) -> bool:
    """Whether `package.module.Name[.attribute]` (under dltrain) names something that exists."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(["dltrain", *parts[:split]]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_the_files_table_names_schemas_and_writers_that_exist():
    section = DOC.read_text().split("## Files dltrain writes", 1)[1].split("## ", 1)[0]
    names = re.findall(
        r"`((?:core|networks|reporting|data|config|tasks|runs|training|inference|experiments)\.[\w.]+)`", section
    )
    assert len(names) >= 10
    missing = [name for name in names if not resolves(name)]
    assert not missing, f"docs/architecture.md names code that does not exist: {missing}"
