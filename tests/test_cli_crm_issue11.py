"""Cards on the command line: a lead's status decides whether mail reaches it, and an address
that is both a user's and a contact's is said to reach no card."""

import json
import subprocess
from pathlib import Path

import pytest

from crmmail.config import Settings
from crmmail.storage.database import Database
from tests.intake import message, running_intake, send
from tests.serveproc import crmmail_argv
from tests.test_cli import Cli

ANN = "ann@example.com"


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def _mail_with_ann(
    db: Database, settings: Settings, cli: Cli, number: int
) -> list[tuple[str, int]]:
    """Bob's mail to Ann, the account CC'd, through SMTP and the worker: the cards it reached."""
    before = {note["id"] for note in cli.json("note", "list", "acme")}
    with running_intake(db, settings) as port:
        mail = message(message_id=f"<quote-{number}@corp.test>")
        send(port, mail, ["acme@mail.localhost"])
    assert cli.json("process", "--until-idle") == {"processed": 1}
    return sorted(
        (note["entity_type"], note["entity_id"])
        for note in cli.json("note", "list", "acme")
        if note["id"] not in before
    )


def test_won_and_lost_leads_stop_receiving_mail(db: Database, settings: Settings, cli: Cli) -> None:
    cli("account", "create", "acme")
    ann = cli.json("contact", "add", "acme", ANN)["id"]
    won, lost, still_open = (
        cli.json("lead", "add", "acme", name, "--contact", ANN)["id"]
        for name in ("Won deal", "Lost deal", "Open deal")
    )
    assert cli.json("lead", "set", str(won), "--status", "won") == {
        "id": won,
        "name": "Won deal",
        "status": "won",
        "contact_ids": [ann],
    }
    assert cli("lead", "set", str(lost), "--status", "lost").stdout == (
        f"lead {lost} (Lost deal) is lost\n"
    )
    assert [(lead["id"], lead["status"]) for lead in cli.json("lead", "list", "acme")] == [
        (won, "won"),
        (lost, "lost"),
        (still_open, "open"),
    ]
    assert f"{lost}  Lost deal  (lost)  contacts [{ann}]" in cli("lead", "list", "acme").stdout

    assert _mail_with_ann(db, settings, cli, 1) == [("contact", ann), ("lead", still_open)]

    cli("lead", "set", str(won), "--status", "open")  # reopened: mail reaches it again
    assert _mail_with_ann(db, settings, cli, 2) == [
        ("contact", ann),
        ("lead", won),
        ("lead", still_open),
    ]


def test_lead_set_refusals_are_one_line(database_url: str, tmp_path: Path) -> None:
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
    lead = json.loads(crmmail("lead", "add", "acme", "Deal", "--json").stdout)["id"]
    for args, code, line in [
        (["999", "--status", "won"], 1, "no lead 999: see `crmmail lead list SLUG`"),
        ([str(lead)], 1, "nothing to change: give --status open|won|lost"),
        ([str(lead), "--status", "sold"], 2, "Invalid value for '--status': 'sold' is not one of"),
    ]:
        result = crmmail("lead", "set", *args)
        assert (result.returncode, result.stdout) == (code, "")
        [written] = result.stderr.splitlines()
        assert written.startswith(f"crmmail: error: {line}")


def test_user_add_and_contact_add_say_when_an_address_is_both(
    db: Database, settings: Settings, cli: Cli
) -> None:
    cli("account", "create", "acme")
    ann = cli.json("contact", "add", "acme", ANN)["id"]
    added = cli("user", "add", "acme", "Ann@Example.com", "--json")
    assert json.loads(added.stdout)["email"] == ANN  # stdout stays one JSON document
    assert added.stderr == (
        f"crmmail: warning: {ANN} is both a user and contact {ann} of 'acme': a user's address"
        " is never a participant, so mail with it puts no note on that contact's card\n"
    )
    # ... and it is true: mail between Bob and Ann reaches no card.
    with running_intake(db, settings) as port:
        send(port, message(), ["acme@mail.localhost"])
    assert cli.json("process", "--until-idle") == {"processed": 1}
    [inbound] = cli.json("inbound", "list", "acme")
    assert (inbound["status"], inbound["reason"]) == ("ignored", "no_match")

    cli("user", "add", "acme", "bo@acme.test")
    contact = cli("contact", "add", "acme", "bo@acme.test")
    bo = cli.json("contact", "list", "acme")[-1]["id"]
    assert contact.stdout == f"contact {bo} added: Bo <bo@acme.test>\n"
    assert contact.stderr == (
        f"crmmail: warning: bo@acme.test is both a user and contact {bo} of 'acme': a user's"
        " address is never a participant, so mail with it puts no note on that contact's card\n"
    )
    assert cli("contact", "add", "acme", "carl@client.test").stderr == ""
    assert cli("user", "add", "acme", "dee@acme.test").stderr == ""
