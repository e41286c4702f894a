"""No module of crmmail but ``crmmail.smtpd.aiosmtpd_seam`` touches a private name of aiosmtpd's.

A private name is one aiosmtpd's protocol modules (``smtp.py``, ``proxy_protocol.py``) define or
set with a single leading underscore: ``SMTP._reader``, ``_handle_client``, ``_timeout_cb``...
Every module of crmmail that imports aiosmtpd, and every module of ``crmmail/smtpd/``, is read
with ``ast``: it may not read, set or override such a name (``x._name``, ``getattr(x,
"_name")``, ``def _name`` in a class), nor import one. The names are read from the installed
aiosmtpd, so a new private name is covered as soon as aiosmtpd has it.
"""

import ast
from pathlib import Path

import aiosmtpd

CRMMAIL = Path(__file__).parents[2] / "crmmail"
SEAM = CRMMAIL / "smtpd" / "aiosmtpd_seam.py"
PROTOCOL_MODULES = ("smtp.py", "proxy_protocol.py")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def aiosmtpd_private_names() -> set[str]:
    """Every single-underscore name aiosmtpd's protocol modules define, set or read."""
    names: set[str] = set()
    for module in PROTOCOL_MODULES:
        tree = ast.parse((Path(aiosmtpd.__file__).parent / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name):
                names.add(node.id)
    return {name for name in names if _private(name)}


def _imports_aiosmtpd(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "aiosmtpd" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "aiosmtpd":
            return True
    return False


def private_uses(source: str, private: set[str]) -> list[str]:
    """Where ``source`` touches one of the ``private`` names (line: what), in source order."""
    uses: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in private:
            uses.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.ClassDef):
            uses.extend(
                (item.lineno, f"def {item.name}")
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in private
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            uses.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiosmtpd"):
            uses.extend(
                (node.lineno, f"import {alias.name}")
                for alias in node.names
                if _private(alias.name)
            )
    return [f"{line}: {what}" for line, what in sorted(uses)]


def checked_modules() -> list[Path]:
    """crmmail's modules that may hold an aiosmtpd object: they import it, or are the intake."""
    modules = []
    for path in sorted(CRMMAIL.rglob("*.py")):
        if path == SEAM:
            continue
        if path.parent.name == "smtpd" or _imports_aiosmtpd(ast.parse(path.read_text())):
            modules.append(path)
    return modules


def test_only_the_seam_touches_aiosmtpd_private_names() -> None:
    private = aiosmtpd_private_names()
    found = {
        str(path.relative_to(CRMMAIL.parent)): uses
        for path in checked_modules()
        if (uses := private_uses(path.read_text(), private))
    }
    assert found == {}, (
        "aiosmtpd private names outside crmmail/smtpd/aiosmtpd_seam.py (move the access there, "
        f"with a contract test): {found}"
    )


def test_the_intake_is_checked() -> None:
    checked = {path.name for path in checked_modules()}
    assert {"server.py", "handler.py", "proxy.py", "data.py"} <= checked
    assert SEAM.name not in checked


def test_the_check_sees_each_kind_of_use() -> None:
    """The check would have caught the listener as it was (overrides, reads, imports)."""
    private = aiosmtpd_private_names()
    assert {"_reader", "_handle_client", "_timeout_cb", "_call_handler_hook"} <= private
    source = """
from aiosmtpd.smtp import SMTP, _Missing

class Listener(SMTP):
    async def _handle_client(self):
        self._timeout_handle.cancel()
        reader = getattr(self, "_reader")
        self._own_state = 1
"""
    assert private_uses(source, private) == [
        "2: import _Missing",
        "5: def _handle_client",
        "6: ._timeout_handle",
        "7: getattr(..., '_reader')",
    ]
