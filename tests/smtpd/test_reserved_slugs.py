"""A renamed account's old slug stays its own: no other account may take it, so mail still sent to
the old addresses (and a cached slug -> account answer at RCPT) can never reach another tenant.
"""

import json
import smtplib
from typing import Any

import pytest
from click.testing import CliRunner

from crmmail.cli import cli as crmmail_cli
from crmmail.config import Settings
from crmmail.smtpd.handler import IntakeHandler
from crmmail.storage.database import Database
from tests.intake import message, wire_bytes
from tests.smtpd.test_group_commit import serving
from tests.smtpd.test_recipient_cache import Clock, rcpt_code

RESERVED = "crmmail: error: slug 'epsi' is reserved: account 'zeta' had it before a rename"


class Cli:
    """``crmmail`` against the test database, as an operator types it (not the serve process:
    the intake's cache is not told of what these commands change)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        result = self.invoke(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def refused(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 1 and result.stdout == ""
        [line] = result.stderr.splitlines()
        return line

    def invoke(self, *args: str) -> Any:
        return self.runner.invoke(crmmail_cli, ["--database-url", self.database_url, *args])


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def test_the_old_slug_cannot_be_taken_and_its_mail_stays_with_its_account(
    db: Database, settings: Settings, cli: Cli
) -> None:
    epsi = cli("account", "create", "epsi")
    clock = Clock()
    handler = IntakeHandler(db, settings)  # the default TTL, on the test's clock
    handler.account_ids.clock = clock
    with serving(handler, settings) as port:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail("bob@corp.test")
            assert rcpt_code(client, "epsi@mail.localhost") == 250  # the cache knows epsi now
        cli("account", "rename", "epsi", "zeta")

        line = cli.refused("account", "create", "epsi", "--name", "Other tenant")
        assert line.startswith(RESERVED)
        assert line.endswith("choose another slug")
        cli("account", "create", "other")
        assert cli.refused("account", "rename", "other", "epsi").startswith(RESERVED)
        assert [a["slug"] for a in cli("account", "list")] == ["other", "zeta"]

        # Within the TTL the cache still answers for epsi: only ever with its own account.
        mail = message(cc="epsi+contact@mail.localhost", message_id="<late@corp.test>")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("bob@corp.test", ["epsi+contact@mail.localhost"], wire_bytes(mail))
        assert cli("process", "--until-idle") == {"processed": 1}
        assert sorted(c["emails"][0] for c in cli("contact", "list", "zeta")) == [
            "ann@example.com",
            "bob@corp.test",
        ]
        assert cli("contact", "list", "other") == []

        clock.now += settings.recipient_cache_ttl + 1  # the cache has forgotten epsi
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail("bob@corp.test")
            assert rcpt_code(client, "epsi+contact@mail.localhost") == 550  # renamed: refused
            assert rcpt_code(client, "zeta@mail.localhost") == 250

        # The owner may take its old slug back; its addresses work again, for it.
        assert cli("account", "rename", "zeta", "epsi")["slug"] == "epsi"
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail("bob@corp.test")
            assert rcpt_code(client, "epsi@mail.localhost") == 250
    assert [(a["slug"], a["name"]) for a in cli("account", "list")] == [
        ("epsi", epsi["name"]),
        ("other", "other"),
    ]
    assert [m["status"] for m in cli("inbound", "list", "epsi")] == ["done"]
    assert cli("inbound", "list", "other") == []


def test_an_account_s_current_slug_is_refused_as_before(cli: Cli) -> None:
    cli("account", "create", "acme")
    line = cli.refused("account", "create", "acme")
    assert line == "crmmail: error: account 'acme' exists already: choose another slug"
    cli("account", "create", "globex")
    assert cli.refused("account", "rename", "globex", "acme") == line
    assert cli("account", "rename", "acme", "acme")["slug"] == "acme"  # its own: a no-op
