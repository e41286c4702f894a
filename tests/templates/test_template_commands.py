"""Templates on the command line: edit and delete them, and a template that cannot render is
refused when saved (by `add` and by `edit`), not when someone sends it."""

import json
from typing import Any

import pytest
from click.testing import CliRunner

from crmmail.cli import cli as crmmail_cli


class Cli:
    """Runs ``crmmail`` in-process against one database, with the account acme and Ann."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def refused(self, *args: str) -> str:
        result = self.invoke(*args)
        assert (result.exit_code, result.stdout) == (1, ""), result.output
        [line] = result.stderr.splitlines()
        return str(line)

    def invoke(self, *args: str) -> Any:
        return self.runner.invoke(crmmail_cli, ["--database-url", self.database_url, *args])


@pytest.fixture
def cli(database_url: str) -> Cli:
    runner = Cli(database_url)
    runner("account", "create", "acme")
    runner("contact", "add", "acme", "ann@example.com", "--name", "Ann Lee")
    return runner


def _render(cli: Cli, name: str) -> Any:
    [ann] = cli.json("contact", "list", "acme")
    return cli.json("template", "render", "acme", name, "--contact", str(ann["id"]))


NEVER_RENDERS = [
    ("{{ contact.name|truncate('short') }}", "the template failed to render: '>=' not supported"),
    ("{{ contact.name < 3 }}", "the template failed to render: '<' not supported"),
    ("{{ loop.index }}", "unknown name loop at line 1: loop.index and the like exist only"),
    ("{% for i in range(3) %}{% endfor %}{{ i }}", "unknown name i: use one of contact"),
    ("{% for i in range(2) %}{{ loop.idx }}{% endfor %}", "unknown loop field idx: use one of"),
    ("{% if contact.name is foo %}x{% endif %}", "unknown test foo: use one of defined"),
    ("{% for i in range(20000) %}{% endfor %}", "the template loops too much: at most 10000"),
    ("{{ [].append }}", "the template tries to reach beyond its fields: access to attribute"),
    ("{{ contact.name.nickname }}", "the template uses something undefined: 'str object' has"),
    ("{% for a, b in range(2) %}{% endfor %}", "the template failed to render: cannot unpack"),
]


@pytest.mark.parametrize("body, line", NEVER_RENDERS)
def test_a_template_that_cannot_render_is_refused_when_saved(
    cli: Cli, body: str, line: str
) -> None:
    refused = cli.refused(
        "template", "add", "acme", "--name", "t", "--subject", "Hi", "--body", body
    )
    assert refused.startswith(f"crmmail: error: {line}")
    assert cli.json("template", "list", "acme") == []
    cli("template", "add", "acme", "--name", "t", "--subject", "Hi", "--body", "fine")
    edited = cli.refused("template", "edit", "acme", "t", "--body", body)
    assert edited == refused
    assert _render(cli, "t")["text"] == "fine"


def test_edit_changes_what_is_given_and_keeps_the_rest(cli: Cli) -> None:
    added = cli.json(
        "template", "add", "acme", "--name", "hello", "--subject", "Hi", "--body", "Dear you"
    )
    edited = cli.json(
        "template", "edit", "acme", "hello", "--subject", "Hi {{ contact.first_name }}"
    )
    assert edited == {**added, "subject": "Hi {{ contact.first_name }}"}
    assert _render(cli, "hello") == {"subject": "Hi Ann", "text": "Dear you", "html": None}

    cli("template", "edit", "acme", "hello", "--body", "<p>Dear {{ contact.name }}</p>", "--html")
    assert _render(cli, "hello") == {
        "subject": "Hi Ann",
        "text": "Dear Ann Lee",
        "html": "<p>Dear Ann Lee</p>",
    }
    renamed = cli("template", "edit", "acme", "hello", "--name", "welcome", "--text")
    assert renamed.stdout == "template 'welcome' saved\n"
    assert [(t["id"], t["name"], t["html"]) for t in cli.json("template", "list", "acme")] == [
        (added["id"], "welcome", False)
    ]
    assert _render(cli, "welcome")["text"] == "<p>Dear Ann Lee</p>"


def test_edit_refusals_are_one_line(cli: Cli) -> None:
    for name in ("a", "b"):
        cli("template", "add", "acme", "--name", name, "--subject", "S", "--body", "B")
    assert cli.refused("template", "edit", "acme", "a") == (
        "crmmail: error: nothing to change:"
        " give --name, --subject, --body or --body-file, --html or --text"
    )
    assert cli.refused("template", "edit", "acme", "a", "--name", "b") == (
        "crmmail: error: template 'b' exists already: choose another name"
    )
    assert cli.refused("template", "edit", "acme", "zz", "--subject", "x") == (
        "crmmail: error: no template 'zz': see `crmmail template list SLUG`"
    )
    assert cli.refused("template", "edit", "acme", "a", "--subject", "{{ contact.phone }}") == (
        "crmmail: error: unknown field contact.phone: use one of contact.name,"
        " contact.first_name, contact.last_name, contact.email"
    )
    assert cli.refused("template", "edit", "acme", "a", "--body", "x", "--body-file", "f") == (
        "crmmail: error: give the body with exactly one of --body or --body-file"
    )


def test_delete(cli: Cli) -> None:
    kept = cli.json("template", "add", "acme", "--name", "kept", "--subject", "S", "--body", "B")
    gone = cli.json("template", "add", "acme", "--name", "gone", "--subject", "S", "--body", "B")
    assert cli.json("template", "delete", "acme", "gone") == gone
    assert cli.json("template", "list", "acme") == [kept]
    assert cli.refused("template", "delete", "acme", "gone") == (
        "crmmail: error: no template 'gone': see `crmmail template list SLUG`"
    )
    assert cli.refused("template", "render", "acme", "gone", "--contact", "1").startswith(
        "crmmail: error: no template 'gone'"
    )
    assert cli("template", "delete", "acme", "kept").stdout == "template 'kept' deleted\n"
