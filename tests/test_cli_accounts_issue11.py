"""Accounts on the command line: list them, rename their display name, see their DMARC policy,
and one clear line for `account set` with nothing to set."""

import subprocess
from pathlib import Path

import pytest

from tests.serveproc import crmmail_argv
from tests.test_cli import Cli


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def test_account_list_gives_every_account_by_slug(cli: Cli) -> None:
    assert cli.json("account", "list") == []
    assert cli("account", "list").stdout == "\n"
    cli("account", "create", "zeta", "--name", "Zeta Ltd")
    cli("account", "create", "acme")
    listed = cli.json("account", "list")
    assert [(a["slug"], a["name"], a["dmarc_policy"]) for a in listed] == [
        ("acme", "acme", "tag"),
        ("zeta", "Zeta Ltd", "tag"),
    ]
    assert listed[1] == cli.json("account", "show", "zeta")  # the same shape as `show`
    assert cli("account", "list").stdout.splitlines() == [
        "acme  (acme)  acme@mail.localhost",
        "zeta  (Zeta Ltd)  zeta@mail.localhost",
    ]


def test_account_set_changes_the_display_name_and_shows_the_account(cli: Cli) -> None:
    cli("account", "create", "acme")
    changed = cli.json("account", "set", "acme", "--name", "  Acme   Corp ")
    assert changed == cli.json("account", "show", "acme")
    assert (changed["slug"], changed["name"]) == ("acme", "Acme Corp")
    both = cli("account", "set", "acme", "--name", "Acme", "--dmarc-policy", "quarantine")
    assert both.stdout == "account acme: name 'Acme', mail failing DMARC is quarantined\n"
    assert cli.json("account", "show", "acme")["dmarc_policy"] == "quarantine"
    refused = cli("account", "set", "acme", "--name", " ", ok=False)
    assert (refused.exit_code, refused.stderr) == (
        1,
        "crmmail: error: an account needs a name: give a non-empty --name\n",
    )


def test_account_show_tells_the_dmarc_policy(cli: Cli) -> None:
    cli("account", "create", "acme", "--name", "Acme Inc.")
    assert cli.json("account", "show", "acme")["dmarc_policy"] == "tag"
    assert cli("account", "show", "acme").stdout.splitlines() == [
        "acme (Acme Inc.)",
        "  note     acme@mail.localhost",
        "  contact  acme+contact@mail.localhost",
        "  lead     acme+lead@mail.localhost",
        "  DMARC    tag: mail failing DMARC is tagged",
    ]
    cli("account", "set", "acme", "--dmarc-policy", "accept")
    assert cli("account", "show", "acme").stdout.splitlines()[-1] == (
        "  DMARC    accept: mail failing DMARC is accepted"
    )


def test_account_set_without_an_option_is_one_line(database_url: str, tmp_path: Path) -> None:
    def crmmail(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            crmmail_argv(database_url, *args),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert crmmail("account", "create", "acme").returncode == 0
    result = crmmail("account", "set", "acme")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "crmmail: error: nothing to change:"
        " give --name TEXT and/or --dmarc-policy accept|tag|quarantine\n"
    )
