"""The import graph of ``src/ledgerlink``: no module imports itself back (no circles), and the layers only
point down (the database and the worker primitives know no feature; adapters know no service).

Every ``import`` counts, including those inside functions; only imports under ``if TYPE_CHECKING:`` are
left out (they never run). An import of ``a.b`` is an edge to ``a.b`` itself, not to its parent package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT_PACKAGE = "ledgerlink"

Graph = Mapping[str, set[str]]


# --------------------------------------------------------------------------- building the graph


def module_names(src: Path = SRC, package: str = ROOT_PACKAGE) -> dict[str, Path]:
    """Every module under ``src/<package>`` by dotted name (a package by its ``__init__``)."""
    names: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement of the tree, at any depth, except the bodies of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, known: Mapping[str, Path]) -> str | None:
    """The longest known module that ``name`` is, or lies in (``a.b.C`` → ``a.b``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules of ``known`` that ``module`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # ``from a import b`` imports the module ``a.b`` when there is one, else a name of ``a``.
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for target in targets:
            resolved = _resolve(target, known)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph(src: Path = SRC, package: str = ROOT_PACKAGE) -> dict[str, set[str]]:
    known = module_names(src, package)
    return {module: imports_of(module, path, known) for module, path in known.items()}


# --------------------------------------------------------------------------- cycles


def find_cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected component with more than one module (or a module importing itself), as a
    sorted list of its modules (sorted for stable output; :func:`circle_through` names one circle in it).

    Tarjan's algorithm, iterative (the graph has hundreds of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    components.append(sorted(component))
    return sorted(components)


def circle_through(graph: Graph, component: list[str]) -> list[str]:
    """One concrete circle ``a → b → … → a`` inside ``component``, starting at its first module."""
    members = set(component)
    start = component[0]
    # Breadth-first from start's successors back to start, inside the component: the shortest circle.
    previous: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in seen:
                    seen.add(child)
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start, start]


def describe_cycles(graph: Graph) -> str:
    lines = []
    for component in find_cycles(graph):
        lines.append(
            f"{len(component)} modules import each other in a circle: {' → '.join(circle_through(graph, component))}"
            f"\n  (all of them: {', '.join(component)})"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- the detector itself


def test_the_detector_finds_a_circle_and_names_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c"], ["e"]]
    assert circle_through(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    message = describe_cycles(graph)
    assert "a → b → c → a" in message
    assert "e → e" in message


def test_the_detector_passes_a_graph_without_circles() -> None:
    graph = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert find_cycles(graph) == []
    assert describe_cycles(graph) == ""


def test_the_parser_counts_function_level_and_relative_imports_but_not_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("X = 1\n")
    (pkg / "typed.py").write_text("Y = 1\n")
    (pkg / "sub" / "high.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.typed import Y\n"
        "def f() -> int:\n"
        "    from ..low import X\n"
        "    return X\n"
    )
    (pkg / "sub" / "back.py").write_text("import pkg.sub.high\nfrom pkg import low\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.sub.high"] == {"pkg.low"}
    assert graph["pkg.sub.back"] == {"pkg.sub.high", "pkg.low"}
    (pkg / "low.py").write_text("from pkg.sub import back\n")
    cycles = find_cycles(import_graph(tmp_path, "pkg"))
    assert cycles == [["pkg.low", "pkg.sub.back", "pkg.sub.high"]]


# --------------------------------------------------------------------------- the real graph


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_module_of_ledgerlink_imports_itself_back(graph: dict[str, set[str]]) -> None:
    assert len(graph) > 100, "the source tree was not found"
    message = describe_cycles(graph)
    assert not message, "import circles:\n" + message


def _reaches(graph: Graph, start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


FEATURES = tuple(
    f"ledgerlink.{name}"
    for name in (
        "banks",
        "sync",
        "inbox",
        "events",
        "fortnox",
        "closing",
        "sie",
        "sandbox",
        "companies",
        "oauth",
        "statements",
        "matching",
        "bgmax",
    )
)


def _violations(
    graph: Graph, sources: Iterable[str], forbidden: tuple[str, ...], *, direct: bool
) -> list[str]:
    bad = []
    for module in sorted(sources):
        targets = graph.get(module, set()) if direct else _reaches(graph, module)
        bad += [f"{module} → {t}" for t in sorted(targets) if _in(t, *forbidden)]
    return bad


def test_the_database_layer_imports_no_feature_and_no_worker(graph: dict[str, set[str]]) -> None:
    db = [m for m in graph if _in(m, "ledgerlink.db")]
    assert _violations(graph, db, (*FEATURES, "ledgerlink.worker"), direct=False) == []


def test_the_worker_primitives_import_no_feature(graph: dict[str, set[str]]) -> None:
    """Only the worker's settings (task discovery) and the app know the feature task modules."""
    primitives = ["ledgerlink.worker.jobs", "ledgerlink.worker.enqueue", "ledgerlink.worker.runner"]
    assert all(m in graph for m in primitives)
    assert _violations(graph, primitives, FEATURES, direct=False) == []


def test_task_discovery_lists_every_feature_tasks_module(graph: dict[str, set[str]]) -> None:
    tasks_modules = {m for m in graph if m.endswith(".tasks") and _in(m, *FEATURES)}
    assert tasks_modules
    assert tasks_modules <= graph["ledgerlink.worker.settings"]


def test_adapters_import_no_service_endpoint_or_database_module(graph: dict[str, set[str]]) -> None:
    adapters = [m for m in graph if _in(m, "ledgerlink.banks.adapters")]
    forbidden = ("ledgerlink.db", "ledgerlink.models", "ledgerlink.worker")
    bad = _violations(graph, adapters, forbidden, direct=False)
    bad += [
        f"{m} → {t}"
        for m in adapters
        for t in _reaches(graph, m)
        if t.rpartition(".")[2] in ("service", "endpoints", "repository", "tasks") or ".service." in t
    ]
    assert bad == []


def test_the_bank_services_do_not_call_into_sync(graph: dict[str, set[str]]) -> None:
    """``sync`` builds on ``banks`` (adapters, credentials); the bank services never reach back."""
    services = [m for m in graph if _in(m, "ledgerlink.banks.service", "ledgerlink.banks.repository")]
    assert _violations(graph, services, ("ledgerlink.sync",), direct=False) == []


def test_services_do_not_depend_on_the_worker_runtime(graph: dict[str, set[str]]) -> None:
    """Services get settings, a session factory and a clock as arguments (``ServiceEnv``); only ``tasks``
    modules know the job context. A service may call the buffered ``enqueue`` of the unit of work and the
    pure backoff formula, nothing else of the worker."""
    services = [m for m in graph if _in(m, *FEATURES) and not m.endswith(".tasks")]
    allowed = {"ledgerlink.worker.enqueue", "ledgerlink.worker.backoff"}
    bad = [
        f"{m} → {t}"
        for m in sorted(services)
        for t in sorted(graph[m])
        if _in(t, "ledgerlink.worker") and t not in allowed
    ]
    assert bad == []


#: Where the features are put together: the app, the CLI and the worker's task discovery.
COMPOSITION = (
    "ledgerlink.api",
    "ledgerlink.main",
    "ledgerlink.cli",
    "ledgerlink.dev",
    "ledgerlink.openapi",
    "ledgerlink.ops",
    "ledgerlink.testbank",
    "ledgerlink.worker",
)


def test_the_foundation_imports_no_feature(graph: dict[str, set[str]]) -> None:
    """Config, errors, the database, models, the clock, money, security…: below every feature."""
    foundation = [m for m in graph if m != "ledgerlink" and not _in(m, *FEATURES, *COMPOSITION)]
    assert "ledgerlink.clock" in foundation and "ledgerlink.money" in foundation
    assert _violations(graph, foundation, (*FEATURES, "ledgerlink.worker"), direct=False) == []


def _feature_of(module: str) -> str | None:
    return next((f for f in FEATURES if _in(module, f)), None)


def test_the_features_without_their_endpoints_form_no_circle(graph: dict[str, set[str]]) -> None:
    """Feature by feature (an endpoint may compose two features; nothing below it may)."""
    packages: dict[str, set[str]] = {f: set() for f in FEATURES}
    for module, targets in graph.items():
        source = _feature_of(module)
        if source is None or module.rpartition(".")[2] == "endpoints":
            continue
        packages[source] |= {t for t in map(_feature_of, targets) if t is not None and t != source}
    message = describe_cycles(packages)
    assert not message, "feature packages in a circle:\n" + message
