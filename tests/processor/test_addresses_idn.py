"""One spelling of addresses (issue 11, items 4 and 6): international domains and junk addresses.

``ivo@exämple.de`` and ``ivo@xn--exmple-cua.de`` are one address for the command line, the
worker and every lookup. An address ``contact add`` refuses (``'pia@client.test'`` read from a
quoted display name, a host without a dot) never becomes a contact.
"""

import json
from typing import Any

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from crmmail.cli import cli as crmmail_cli
from crmmail.mail.addresses import (
    PLAIN_ADDRESS,
    InvalidAddress,
    checked_address,
    is_contact_address,
    is_plain_address,
    normalized_address,
)
from tests.intake import message
from tests.processor.conftest import Mailroom

NOTE = "acme@mail.localhost"
CONTACT = "acme+contact@mail.localhost"
LEAD = "acme+lead@mail.localhost"


def crmmail(room: Mailroom, *args: str) -> Any:
    """``crmmail ARGS --json`` against the mail room's database; the parsed output."""
    result = CliRunner().invoke(
        crmmail_cli, ["--database-url", room.settings.database_url, *args, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(room: Mailroom, *args: str) -> str:
    """``crmmail ARGS`` that must fail with one line; that line."""
    result = CliRunner().invoke(crmmail_cli, ["--database-url", room.settings.database_url, *args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [line] = result.output.strip().splitlines()
    return line


def contact_emails(room: Mailroom) -> list[list[str]]:
    return sorted(contact["emails"] for contact in room.contacts())


def test_mail_from_the_ascii_spelling_reaches_the_contact_added_in_unicode(
    mailroom: Mailroom,
) -> None:
    ivo = crmmail(mailroom, "contact", "add", "acme", "ivo@exämple.de", "--name", "Ivo")
    assert ivo["emails"] == ["ivo@exämple.de"]
    assert "already a contact" in refused(
        mailroom, "contact", "add", "acme", "ivo@xn--exmple-cua.de"
    )

    mailroom.deliver(message(sender="Ivo <ivo@xn--exmple-cua.de>", cc=NOTE), [NOTE])
    assert mailroom.outcomes() == [("done", None)]
    assert mailroom.cards() == {("contact", ivo["id"])}

    mail = message(sender="IVO@XN--EXMPLE-CUA.DE", cc=CONTACT, message_id="<second@x.test>")
    mailroom.deliver(mail, [CONTACT])
    assert contact_emails(mailroom) == [["ann@example.com"], ["ivo@exämple.de"]]
    assert len([c for c in mailroom.contacts() if c["emails"] == ["ivo@exämple.de"]]) == 1


def test_a_contact_added_in_ascii_is_found_in_either_spelling(mailroom: Mailroom) -> None:
    ivo = crmmail(mailroom, "contact", "add", "acme", "Ivo@XN--Exmple-Cua.DE")
    assert ivo["emails"] == ["ivo@exämple.de"]
    assert "already a contact" in refused(mailroom, "contact", "add", "acme", "ivo@EXÄMPLE.de")
    raw = (  # 8-bit UTF-8 in the header, as a client using SMTPUTF8 writes it
        f"From: Ivo <Ivo@EXÄMPLE.de>\r\nTo: {LEAD}\r\nCc: Ivo <ivo@xn--exmple-cua.de>\r\n"
        "Subject: Offer\r\n"
        "Message-ID: <utf8@x.test>\r\n\r\nHello.\r\n"
    )
    mailroom.deliver(raw.encode(), [LEAD])
    [lead] = mailroom.leads()
    assert lead["contact_ids"] == [ivo["id"]]
    assert contact_emails(mailroom) == [["ivo@exämple.de"]]


def test_a_user_in_unicode_is_not_made_a_contact_by_mail_in_ascii(mailroom: Mailroom) -> None:
    crmmail(mailroom, "user", "add", "acme", "boss@exämple.de")
    mail = message(sender="Boss <boss@xn--exmple-cua.de>", cc=CONTACT)
    mailroom.deliver(mail, [CONTACT])
    assert contact_emails(mailroom) == [["ann@example.com"]]


def test_a_malformed_ascii_label_crashes_nothing(mailroom: Mailroom) -> None:
    line = refused(mailroom, "contact", "add", "acme", "bob@xn--zz.test")
    assert line.startswith("crmmail: error: invalid email address 'bob@xn--zz.test'")
    mail = message(sender="Bob <bob@xn--zz.test>", to="ann@example.com, x@xn--.test", cc=CONTACT)
    mailroom.deliver(mail, [CONTACT])
    assert mailroom.outcomes() == [("done", None)]
    assert contact_emails(mailroom) == [["ann@example.com"]]


def test_a_quoted_address_as_display_name_makes_no_junk_contact(mailroom: Mailroom) -> None:
    mail = message(
        to="'pia@client.test' <pia@client.test>, odd..dots@client.test, root@localhost",
        cc=CONTACT,
    )
    mailroom.deliver(mail, [CONTACT])
    assert mailroom.outcomes() == [("done", None)]
    contacts = {contact["emails"][0]: contact["name"] for contact in mailroom.contacts()}
    assert contacts == {"bob@corp.test": "Bob Buyer", "pia@client.test": "Pia"}


# --- the rules themselves: the parser's spelling and ``contact add`` agree -----------------------

LOCALS = st.sampled_from(["ivo", "Ivo", "IVO", "a.b", "x+tag", "jürgen", "o'neil"])
DOMAINS = st.sampled_from(
    [
        "exämple.de",
        "EXÄMPLE.DE",
        "xn--exmple-cua.de",
        "XN--Exmple-Cua.De",
        "straße.de",
        "xn--strae-oqa.de",
        "bücher.example.com",
        "例え.テスト",
        "xn--r8jz45g.xn--zckzah",
        "client.test",
        "Client.TEST",
        "xn--zz.test",
        "xn--.test",
        "a--b.test",
        "mail.localhost",
    ]
)


@given(local=LOCALS, domain=DOMAINS)
def test_the_parser_spells_an_address_as_contact_add_stores_it(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    spelled = normalized_address(address)
    assert spelled is not None and normalized_address(spelled) == spelled
    try:
        stored = checked_address(address)
    except InvalidAddress:
        assert not is_contact_address(address) and not is_contact_address(spelled)
        return
    assert spelled == stored and is_contact_address(spelled)


@given(st.from_regex(PLAIN_ADDRESS, fullmatch=True) | st.text(max_size=60))
def test_the_quick_check_accepts_only_what_contact_add_accepts(address: str) -> None:
    if is_plain_address(address):
        assert checked_address(address) == address
