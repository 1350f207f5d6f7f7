"""The import structure of `playground/`, read from the source with `ast` (nothing is imported).

Every import counts: at module level, inside a function (an import put off until call time still
ties two modules together), under `if TYPE_CHECKING:`; relative imports are resolved against the
module's package. `import_graph()` is the one reading of the structure; each rule is a test over it,
so a further rule (e.g. which app may import which) is one more test in this file.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "playground"

# Cycles known and owned elsewhere: each is named by its modules, with who takes it apart. The test
# fails for any other cycle, and for one of these once it is gone (then delete its line here).
KNOWN_CYCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Import:
    target: str  # the module of `playground` imported
    line: int
    in_function: bool

    def __str__(self) -> str:
        return f"{self.target} (line {self.line}{', inside a function' if self.in_function else ''})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `root`, by dotted name (a package by its `__init__.py`)."""
    return {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names an import statement names: `from a import b` names `a.b`, which is module
    `a.b` if there is one, else a name defined in `a` (see `_nearest_module`)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        # In module a.b.c, `.` is package a.b; in package a.b (its __init__) it is a.b itself.
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield f"{base}.{alias.name}"


def _nearest_module(name: str, modules: dict[str, Path]) -> str | None:
    """`name` if it is a module, else its nearest enclosing module (`a.b.func` -> `a.b`)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """The imports of `module` that name other modules of `package`, wherever they stand in it."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: dict[str, Import] = {}

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function = True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name in _imported_names(node, module, is_package):
                if name != package and not name.startswith(package + "."):
                    continue
                target = _nearest_module(name, modules)
                if target is None or target == module:
                    continue
                if target not in found or (found[target].in_function and not in_function):
                    found[target] = Import(target, node.lineno, in_function)  # module level first
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return sorted(found.values(), key=lambda item: item.target)


@cache
def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, tuple[Import, ...]]:
    """Each module of `package` -> the modules of `package` it imports."""
    modules = find_modules(root, package)
    return {name: tuple(imports_of(name, path, modules, package)) for name, path in modules.items()}


def find_cycles(graph: dict[str, tuple[Import, ...]]) -> list[set[str]]:
    """The groups of modules that import one another, however far round (Tarjan's strongly
    connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for edge in graph.get(module, ()):
            if edge.target not in index:
                connect(edge.target)
                low[module] = min(low[module], low[edge.target])
            elif edge.target in on_stack:
                low[module] = min(low[module], index[edge.target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return cycles


def describe(cycle: set[str], graph: dict[str, tuple[Import, ...]]) -> str:
    inside = [(module, edge) for module in sorted(cycle) for edge in graph[module] if edge.target in cycle]
    lines = [f"{module} imports {edge}" for module, edge in inside]
    return "\n  ".join(["a cycle of " + ", ".join(sorted(cycle)) + ":", *lines])


def test_it_finds_no_import_cycle_between_modules():
    graph = import_graph()
    cycles = find_cycles(graph)
    unknown = [describe(cycle, graph) for cycle in cycles if frozenset(cycle) not in KNOWN_CYCLES]
    assert not unknown, "\n".join(unknown)
    gone = [", ".join(sorted(cycle)) for cycle in KNOWN_CYCLES if cycle not in {frozenset(c) for c in cycles}]
    assert not gone, f"no longer a cycle, so delete it from KNOWN_CYCLES: {gone}"


# The direction rule (DESIGN.md): the two front doors, the pages and the API, depend on the domain
# (generations, catalog, keys, access), never on each other nor on an engine.
FORBIDDEN = {
    "playground.web": ("playground.api", "playground.engines"),
    "playground.api": ("playground.web", "playground.engines"),
}


def forbidden_imports(graph: dict[str, tuple[Import, ...]]) -> list[str]:
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return [
        f"{module} imports {imported}"
        for module, imports in graph.items()
        for door, banned in FORBIDDEN.items()
        if inside(module, door)
        for imported in imports
        if any(inside(imported.target, package) for package in banned)
    ]


def test_the_pages_and_the_api_import_neither_each_other_nor_an_engine():
    assert forbidden_imports(import_graph()) == []


def test_the_direction_rule_sees_an_import_across(tmp_path):
    write(
        tmp_path,
        {
            "playground/__init__.py": "",
            "playground/web/__init__.py": "",
            "playground/web/views.py": "def page():\n    from playground.api.views import thing\n",
            "playground/api/__init__.py": "",
            "playground/api/views.py": "from ..engines import mindvideo\nthing = 1\n",
            "playground/engines/__init__.py": "",
            "playground/engines/mindvideo.py": "",
        },
    )
    found = forbidden_imports(import_graph(tmp_path, "playground"))
    assert sorted(found) == [
        "playground.api.views imports playground.engines.mindvideo (line 1)",
        "playground.web.views imports playground.api.views (line 2, inside a function)",
    ]


def test_it_reads_every_module_of_the_package():
    graph = import_graph()
    assert {"playground.settings", "playground.generations.services", "playground.engines"} <= set(graph)
    # A sanity check on the reading itself: services is known to use the catalog's models.
    assert "playground.catalog.models" in {edge.target for edge in graph["playground.generations.services"]}


# --- The reading, checked on a package made for the purpose -----------------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        pytest.param(
            {"a.py": "from pkg.b import x\n", "b.py": "def f():\n    from pkg.a import y\n"},
            {"pkg.a", "pkg.b"},
            id="function-level import",
        ),
        pytest.param(
            {"a.py": "from .b import x\n", "b.py": "from .c import y\n", "c.py": "from . import a\n"},
            {"pkg.a", "pkg.b", "pkg.c"},
            id="relative imports, three round",
        ),
        pytest.param(
            {
                "sub/__init__.py": "from .base import thing\nfrom .impl import Impl\n",
                "sub/base.py": "def get():\n    from .impl import Impl\n",
                "sub/impl.py": "from .base import thing\n",
            },
            {"pkg.sub.base", "pkg.sub.impl"},
            id="sibling modules of a subpackage",
        ),
        pytest.param(
            {
                "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import T\n",
                "b.py": "import pkg.a\n",
            },
            {"pkg.a", "pkg.b"},
            id="type-checking import",
        ),
    ],
)
def test_it_finds_a_cycle_however_it_is_written(tmp_path, files, cycle):
    write(tmp_path / "pkg", {"__init__.py": "", **files})
    graph = import_graph.__wrapped__(tmp_path, "pkg")
    assert find_cycles(graph) == [cycle]


def test_it_sees_no_cycle_where_a_package_imports_its_own_modules(tmp_path):
    # An engine registry in a package's __init__ that its modules do not import back is no cycle.
    write(
        tmp_path / "pkg",
        {
            "__init__.py": "from .base import Engine\nfrom .impl import Impl\n",
            "base.py": "class Engine: ...\n",
            "impl.py": "from pkg.base import Engine\nimport os\n",
        },
    )
    graph = import_graph.__wrapped__(tmp_path, "pkg")
    assert {edge.target for edge in graph["pkg"]} == {"pkg.base", "pkg.impl"}
    assert find_cycles(graph) == []
