"""The house has floors: no import circle between the package's modules, nothing imports the CLI, and
``sb3_trading.evaluation`` (which measures) never imports what trains.

Every ``import`` and ``from ... import`` of every module is read with ``ast`` — at module level and
inside functions alike — and resolved to the package's module it names.
"""

import ast
from pathlib import Path

import pytest

import sb3_trading

ROOT = Path(sb3_trading.__file__).parent
PACKAGE = "sb3_trading"
#: what trains (and the layers above it): evaluation must not import these
TRAINING = (
    "sb3_trading.training",
    "sb3_trading.walk_forward",
    "sb3_trading.tuning",
    "sb3_trading.commands",
    "sb3_trading.cli",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The package module ``name`` names (itself, or its closest parent that is a module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports anywhere in its source."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # "from pkg import sub" imports the module pkg.sub when it is one, else names of pkg
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                resolved = resolve(target)
                if resolved is not None and resolved != module:
                    found.add(resolved)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a list of modules, the first repeated at the end), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_walker_sees_module_and_function_level_imports():
    assert "sb3_trading.recipe" in GRAPH["sb3_trading.training"]  # module level
    assert "sb3_trading.algos" in GRAPH["sb3_trading.tuning.commands"]  # inside a method
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_between_the_package_modules():
    # a package's __init__ re-exporting its submodules is not a circle with them unless they import it back
    cycle = find_cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle)


def test_nothing_imports_the_cli():
    importers = sorted(module for module, targets in GRAPH.items() if "sb3_trading.cli" in targets)
    assert importers == []


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m == "sb3_trading.evaluation" or m.startswith("sb3_trading.evaluation."))
)
def test_evaluation_does_not_import_the_training_modules(module):
    reached = {t for t in GRAPH[module] if any(t == top or t.startswith(top + ".") for top in TRAINING)}
    assert reached == set(), f"{module} imports {sorted(reached)}"


def test_lower_floors_do_not_reach_the_commands_layer():
    importers = sorted(
        module
        for module, targets in GRAPH.items()
        if not module.startswith("sb3_trading.commands")
        and module != "sb3_trading.cli"
        and any(t.startswith("sb3_trading.commands") for t in targets)
    )
    assert importers == []


def package_graph() -> dict[str, set[str]]:
    """Imports between the top-level floors (``sb3_trading.<name>``: a subpackage or a top-level module)."""

    def floor(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        for target in targets:
            a, b = floor(module), floor(target)
            if a != b and PACKAGE not in (a, b):
                graph.setdefault(a, set()).add(b)
    return graph


def test_no_circle_between_the_floors():
    """Not only modules: no subpackage or top-level module reaches back up to one that imports it."""
    cycle = find_cycle(package_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_top_is_ordered():
    graph = package_graph()
    assert "sb3_trading.recipe" not in graph.get("sb3_trading.evaluation", set())
    assert {"sb3_trading.recipe", "sb3_trading.evaluation"} <= graph["sb3_trading.training"]
    assert {"sb3_trading.recipe", "sb3_trading.evaluation"} <= graph["sb3_trading.walk_forward"]
    assert "sb3_trading.recipe" in graph["sb3_trading.tuning"]
    assert graph["sb3_trading.cli"] <= {"sb3_trading.commands", "sb3_trading.version"}
