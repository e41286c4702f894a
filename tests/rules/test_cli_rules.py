"""The mailbox-rule commands on the command line: JSON shapes and one-line refusals."""

import json
from typing import Any

import pytest
from click.testing import CliRunner

from crmmail.cli import cli as crmmail_cli
from crmmail.config import Settings
from crmmail.connector.capture import Destination, Incoming, Placement, capture
from crmmail.services import accounts, crm
from crmmail.storage.database import Database
from crmmail.storage.models import Mailbox
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository
from tests.connector.conftest import mail

ADMIN, MEMBER = "boss@acme.test", "ann@acme.test"


class Cli:
    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.runner = CliRunner()

    def json(self, *args: str) -> Any:
        result = self.runner.invoke(crmmail_cli, ["--database-url", self.url, *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def fails(self, *args: str) -> str:
        result = self.runner.invoke(crmmail_cli, ["--database-url", self.url, *args])
        assert result.exit_code == 1 and result.stdout == ""
        [line] = result.stderr.splitlines()
        return line


@pytest.fixture
def world(db: Database, settings: Settings, database_url: str) -> tuple[Cli, int, list[int]]:
    """acme with an admin and a member, the member's personal box with two emails of a thread."""
    domains = settings.smart_domains
    with db.transaction() as session:
        account = accounts.create_account(session, "acme", None)
        for email, admin in ((ADMIN, True), (MEMBER, False)):
            accounts.add_user(
                session,
                "acme",
                email,
                name=None,
                admin=admin,
                email_access=True,
                smart_domains=domains,
            )
        crm.add_contact(session, "acme", "carl@customer.test", "Carl Doe", domains)
        owner = AccountRepository(session).user_by_email(account.id, MEMBER)
        assert owner is not None
        box = MailboxRepository(session).add(
            Mailbox(
                account_id=account.id,
                owner_id=owner.id,
                email=MEMBER,
                username=MEMBER,
                kind="personal",
                imap_host="imap.example.com",
                imap_port=993,
                imap_security="ssl",
                smtp_host="smtp.example.com",
                smtp_port=465,
                smtp_security="ssl",
            )
        )
        ids = [
            capture(
                session,
                Destination.load(session, box.id),
                Placement(account.id, box.id, folder, 1, uid),
                Incoming.parse(mail(subject, sender=sender, to=to)),
                domains,
            )[1]
            for uid, (folder, subject, sender, to) in enumerate(
                [
                    ("inbox", "Offer", "carl@customer.test", MEMBER),
                    ("sent", "Re: Offer", MEMBER, "carl@customer.test"),
                ],
                start=1,
            )
        ]
    return Cli(database_url), box.id, ids


def test_threads_delete_restore_and_purge_on_the_command_line(
    world: tuple[Cli, int, list[int]],
) -> None:
    cli, box_id, (offer, reply) = world
    [thread] = cli.json("thread", "list", "acme", "--as", MEMBER)
    assert set(thread) == {"id", "mailbox_id", "counterpart", "subject", "message_ids", "last_date"}
    assert (thread["counterpart"], thread["message_ids"]) == ("carl@customer.test", [offer, reply])
    assert cli.json("thread", "list", "acme", "--as", ADMIN) == []  # not shared with the admin

    cli.json("email", "delete", str(offer), "--as", MEMBER)

    assert [e["id"] for e in cli.json("email", "list", "acme", "--as", MEMBER)] == [reply]
    line = cli.fails("deleted", "list", "acme", "--as", MEMBER)
    assert line == "crmmail: error: only admins see the Deleted folder"
    assert cli.json("deleted", "list", "acme", "--as", ADMIN) == []  # not theirs to read
    line = cli.fails("mailbox", "set", str(box_id), "--as", ADMIN, "--share-with-admin", "on")
    assert "only its owner" in line
    cli.json("mailbox", "set", str(box_id), "--as", MEMBER, "--share-with-admin", "on")
    assert [e["id"] for e in cli.json("deleted", "list", "acme", "--as", ADMIN)] == [offer]
    cli.json("email", "restore", str(offer), "--as", ADMIN)
    assert cli.json("deleted", "list", "acme", "--as", ADMIN) == []
    cli.json("email", "delete", str(reply), "--as", MEMBER)
    cli.json("email", "restore", str(reply), "--as", MEMBER)  # the owner may, knowing the id
    assert len(cli.json("email", "list", "acme", "--as", MEMBER)) == 2
    assert cli.json("purge") == {"purged": 0}

    settings = cli.json("mailbox", "set", str(box_id), "--as", MEMBER, "--threads", "off")
    assert settings["threads"] is False
    assert len(cli.json("thread", "list", "acme", "--as", MEMBER)) == 2
    line = cli.fails("mailbox", "set", str(box_id), "--as", MEMBER, "--shared")
    assert "only admins" in line
    line = cli.fails("mailbox", "disconnect", str(box_id), "--as", MEMBER)
    assert "--delete-emails or --keep-emails" in line


def test_templates_on_the_command_line(world: tuple[Cli, int, list[int]]) -> None:
    cli, _, _ = world
    [contact] = cli.json("contact", "list", "acme")
    cli.json(
        "template",
        "add",
        "acme",
        "--name",
        "hello",
        "--subject",
        "Hi {{contact.first_name}}",
        "--body",
        "<p>Dear {{contact.name}}</p>",
        "--html",
    )
    assert [t["name"] for t in cli.json("template", "list", "acme")] == ["hello"]

    rendered = cli.json("template", "render", "acme", "hello", "--contact", str(contact["id"]))

    assert rendered == {
        "subject": "Hi Carl",
        "text": "Dear Carl Doe",
        "html": "<p>Dear Carl Doe</p>",
    }
    line = cli.fails(
        "template", "add", "acme", "--name", "bad", "--subject", "{{contact.phone}}", "--body", "x"
    )
    assert line.startswith("crmmail: error: unknown field contact.phone")
