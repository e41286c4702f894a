"""The services are one face-neutral layer: they reach mail servers through the connector's
façade only, and say nothing in command-line words (no command, no option)."""

import ast
import re

from tests.test_import_graph import ROOT, imported

SERVICES = sorted((ROOT / "services").glob("*.py"))
# `crmmail account create`, --password-env, --as USER_EMAIL: what only the command line says.
COMMAND_LINE = re.compile(r"`crmmail [a-z]|(?<![\w-])--[a-z][a-z-]+")
# Messages the existing tests still match word for word (kept until those tests change).
KEPT = {"give both --imap-host and --smtp-host, or neither to discover them"}


def test_the_services_import_the_connector_facade_only() -> None:
    assert SERVICES
    for path in SERVICES:
        connector = {name for name in imported(path) if name.startswith("crmmail.connector")}
        assert connector <= {"crmmail.connector.facade"}, f"{path.name} imports {connector}"


def test_the_services_say_nothing_in_command_line_words() -> None:
    found = []
    for path in SERVICES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and node.value not in KEPT
                and COMMAND_LINE.search(node.value)
            ):
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert found == []
