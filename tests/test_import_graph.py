"""The package graph of ``crmmail`` points down only (design.md, Layout), read from the source.

Every module's imports (at the top, inside functions, under ``TYPE_CHECKING``) are parsed with
``ast`` and mapped to the unit of ``crmmail`` they belong to: a subpackage (``processor``,
``mail``...) or a top-level module (``dnscheck``, ``config``...). The rules: no cycle between
units; the processor and the connector never import each other; the SMTP intake imports neither;
the mail core imports none of the layers above it; storage imports only itself and the error
tree (``crmmail.errors``, which imports nothing of ours).
"""

import ast
from collections import defaultdict
from pathlib import Path

import crmmail

ROOT = Path(crmmail.__file__).parent
ERROR_TREE = "errors"
FORBIDDEN = {
    "processor": {"connector"},
    "connector": {"processor"},
    "smtpd": {"processor", "connector"},
    "mail": {"processor", "connector", "services", "smtpd"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative).is_dir()


def imported(path: Path) -> set[str]:
    """The ``crmmail`` modules ``path`` imports, absolute."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # ``from crmmail import dnscheck`` imports a module
                submodule = f"{module}.{alias.name}"
                found.add(submodule if is_module(submodule) else module)
    return {name for name in found if name == "crmmail" or name.startswith("crmmail.")}


def unit(module: str) -> str:
    """The subpackage or top-level module of ``crmmail`` a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "crmmail"


def package_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]]]:
    """Unit -> the units it imports, and for each arrow the imports behind it."""
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.relative_to(ROOT).parts:
            continue  # Alembic's scripts: storage's own, run by storage.migrate
        source = module_name(path)
        graph[unit(source)]
        for target in imported(path):
            if target == "crmmail" or unit(target) == unit(source):
                continue
            graph[unit(source)].add(unit(target))
            why[(unit(source), unit(target))].add(f"{source} -> {target}")
    return graph, why


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_the_imports_that_are_there() -> None:
    graph, why = package_graph()
    assert {"processor", "connector", "mail", "storage", "smtpd", "routing"} <= set(graph)
    assert "mail" in graph["processor"] and "mail" in graph["connector"]
    assert "storage" in graph["mail"]
    assert "crmmail.connector.capture -> crmmail.mail.cards" in why[("connector", "mail")]


def test_no_cycle_between_packages() -> None:
    graph, why = package_graph()
    found = cycles(graph)
    assert not found, {
        " <-> ".join(cycle): sorted(
            line for a in cycle for b in cycle if a != b for line in why.get((a, b), ())
        )
        for cycle in found
    }


def test_no_forbidden_arrow() -> None:
    graph, why = package_graph()
    wrong = {
        (source, target): sorted(why[(source, target)])
        for source, targets in FORBIDDEN.items()
        for target in graph.get(source, set()) & targets
    }
    assert not wrong, wrong


def test_storage_imports_only_itself_and_the_error_tree() -> None:
    graph, why = package_graph()
    above = graph["storage"] - {ERROR_TREE}
    assert not above, {target: sorted(why[("storage", target)]) for target in above}
    assert not graph[ERROR_TREE], "the error tree imports nothing of ours"
