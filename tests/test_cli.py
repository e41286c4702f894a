"""The command line is a contract: JSON shapes, exit codes, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmmail.cli import cli as crmmail_cli
from crmmail.config import Settings
from crmmail.storage.database import Database
from tests.intake import message, running_intake, send


class Cli:
    """Runs ``crmmail`` in-process against one database."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Any:
        result = self.runner.invoke(crmmail_cli, ["--database-url", self.database_url, *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = self.runner.invoke(
            crmmail_cli, ["--database-url", self.database_url, *args, "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def test_account_show_lists_the_smart_addresses(cli: Cli) -> None:
    cli("account", "create", "acme", "--name", "Acme Inc.")
    assert cli.json("account", "show", "acme") == {
        "slug": "acme",
        "name": "Acme Inc.",
        "dmarc_policy": "tag",
        "smart_addresses": {
            "note": "acme@mail.localhost",
            "contact": "acme+contact@mail.localhost",
            "lead": "acme+lead@mail.localhost",
        },
    }
    cli("account", "rename", "acme", "acme-corp")
    assert cli.json("account", "show", "acme-corp")["smart_addresses"]["lead"] == (
        "acme-corp+lead@mail.localhost"
    )
    assert cli("account", "show", "acme", ok=False).exit_code == 1


def test_cards_and_their_listings(cli: Cli) -> None:
    cli("account", "create", "acme")
    cli("user", "add", "acme", "Boss@Acme.test", "--admin", "--no-email-access")
    ann = cli.json("contact", "add", "acme", "Ann@Example.com", "--name", "Ann Lee")
    cli("contact", "add", "acme", "bob@example.com")
    assert cli.json("contact", "list", "acme") == [
        {"id": ann["id"], "name": "Ann Lee", "first_name": "Ann", "emails": ["ann@example.com"]},
        {"id": ann["id"] + 1, "name": "Bob", "first_name": "Bob", "emails": ["bob@example.com"]},
    ]
    lead = cli.json("lead", "add", "acme", "Widgets", "--contact", "ann@example.com")
    customer = cli.json(
        "customer",
        "add",
        "acme",
        "Example Ltd",
        "--contact",
        "ann@example.com",
        "--contact",
        "BOB@example.com",
    )
    assert cli.json("lead", "list", "acme") == [
        {"id": lead["id"], "name": "Widgets", "status": "open", "contact_ids": [ann["id"]]}
    ]
    assert cli.json("customer", "list", "acme") == [
        {"id": customer["id"], "name": "Example Ltd", "contact_ids": [ann["id"], ann["id"] + 1]}
    ]
    assert cli.json("note", "list", "acme") == []
    assert cli.json("inbound", "list", "acme") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["account", "show", "nope"], "no account 'nope'"),
        (["account", "create", "Bad Slug"], "invalid slug 'Bad Slug'"),
        (["account", "create", "acme"], "account 'acme' exists already"),
        (["account", "rename", "acme", "x_y"], "invalid slug 'x_y'"),
        (["contact", "add", "acme", "not-an-address"], "invalid email address 'not-an-address'"),
        (["contact", "add", "acme", "x@mail.localhost"], "smart-address domain"),
        (["contact", "add", "acme", "ann@example.com"], "already a contact"),
        (["user", "add", "acme", "acme+lead@mail.localhost"], "smart-address domain"),
        (["lead", "add", "acme", "Deal", "--contact", "who@x.test"], "no contact with address"),
        (["lead", "add", "acme", "  "], "a lead needs a name"),
        (["inbound", "retry", "999"], "no inbound message 999"),
        (["lead", "add", "acme", "x" * 301], "the lead name is too long"),
        (["contact", "add", "acme", "c@x.test", "--name", "y" * 201], "contact name is too long"),
    ],
)
def test_bad_input_is_one_clear_line(cli: Cli, args: list[str], message: str) -> None:
    cli("account", "create", "acme")
    cli("contact", "add", "acme", "ann@example.com")
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("crmmail: error: ")
    assert message in line


def run_crmmail(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmmail", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_uninitialised_database_is_named_and_not_created(tmp_path: Path) -> None:
    result = run_crmmail("account", "show", "demo", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "crmmail: error: no database at ./crmmail.db: run `crmmail init`\n"
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_are_one_line_without_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CRMMAIL_SMTP_PORT": "not-a-port"}
    result = run_crmmail("init", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("crmmail: error: invalid setting CRMMAIL_SMTP_PORT")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    result = run_crmmail("--database-url", "mysql://x/y", "init", cwd=tmp_path)
    assert result.stderr.startswith("crmmail: error: unsupported database 'mysql'")


def test_users_keep_their_role_and_email_access(cli: Cli) -> None:
    cli("account", "create", "acme")
    cli("user", "add", "acme", "Boss@Acme.test", "--admin", "--name", "The Boss")
    cli("user", "add", "acme", "temp@acme.test", "--no-email-access")
    assert [
        (u["email"], u["name"], u["role"], u["email_access"])
        for u in cli.json("user", "list", "acme")
    ] == [
        ("boss@acme.test", "The Boss", "admin", True),
        ("temp@acme.test", "temp", "member", False),
    ]


def test_smart_domains_come_from_the_environment(cli: Cli) -> None:
    cli("account", "create", "acme")
    env = {"CRMMAIL_SMART_DOMAINS": "crm.example.test, mail.example.test"}
    shown = cli.json("account", "show", "acme", env=env)
    assert shown["smart_addresses"]["contact"] == "acme+contact@crm.example.test"


def test_init_process_and_retry_on_the_command_line(
    cli: Cli, db: Database, settings: Settings
) -> None:
    assert cli.json("init")["at_head"] is True
    cli("account", "create", "acme")
    with running_intake(db, settings) as port:
        send(port, message(cc="acme@mail.localhost"), ["acme@mail.localhost"])
    assert cli.json("process", "--until-idle") == {"processed": 1}
    [ignored] = cli.json("inbound", "list", "acme")
    assert (ignored["status"], ignored["reason"], ignored["message_id"]) == (
        "ignored",
        "no_match",
        "quote-1@corp.test",
    )
    cli("contact", "add", "acme", "ann@example.com")
    assert cli.json("inbound", "retry", str(ignored["id"])) == {
        "id": ignored["id"],
        "status": "queued",
    }
    assert cli.json("process", "--until-idle") == {"processed": 1}
    [done] = cli.json("inbound", "list", "acme")
    assert {key: done[key] for key in ("id", "status", "reason")} == {
        "id": ignored["id"],
        "status": "done",
        "reason": None,
    }
    [note] = cli.json("note", "list", "acme")
    assert {key: note[key] for key in ("entity_type", "subject", "message_id")} == {
        "entity_type": "contact",
        "subject": "Quote for 100 widgets",
        "message_id": "quote-1@corp.test",
    }
    assert note["entity_id"] == cli.json("contact", "list", "acme")[0]["id"]
    assert cli.json("process", "--until-idle") == {"processed": 0}


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    result = run_crmmail("inbound", "retry", "abc", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "crmmail: error: Invalid value for 'INBOUND_ID': 'abc' is not a valid integer."
        " (see `crmmail inbound retry --help`)\n"
    )
