"""The loop guard (contacts and leads per sender and hour) and mailing-list traffic."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crmmail.config import Settings
from crmmail.mail.message import parse_message
from crmmail.processor.steps.classify import machine_made
from crmmail.processor.worker import Worker
from crmmail.services import crm, inbound
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.models import Contact, Lead
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.intake import message, wire_bytes

CONTACT = "acme+contact@mail.localhost"
LEAD = "acme+lead@mail.localhost"
SENDER = "bob@corp.test"


def spool(db: Database, account_id: int, raw: bytes, rcpt: str) -> None:
    entry = SpoolEntry(account_id, "127.0.0.1:1", "mx.corp.test", SENDER, [rcpt], raw)
    with db.transaction() as session:
        InboundRepository(session).spool([entry])


def from_bob(number: int, rcpt: str, sender: str = f"Bob <{SENDER}>") -> bytes:
    """Bob writes to one new person, copying the smart address."""
    return wire_bytes(
        message(
            sender=sender,
            to=f"Person {number} <person{number}@example.com>",
            cc=rcpt,
            subject=f"Hello {number}",
            message_id=f"<m{number}.{rcpt}@corp.test>",
        )
    )


def outcomes(db: Database) -> list[tuple[str, str | None]]:
    with db.transaction() as session:
        return [(row["status"], row["reason"]) for row in inbound.list_inbound(session, "acme")]


def contact_emails(db: Database) -> set[str]:
    with db.transaction() as session:
        return {e for c in crm.list_contacts(session, "acme") for e in c["emails"]}


@pytest.fixture
def bob_known(db: Database, acme: int) -> None:
    """Bob is a contact already (made by hand: he created nothing himself)."""
    with db.transaction() as session:
        crm.add_contact(session, "acme", SENDER, "Bob", ("mail.localhost",))


def test_the_21st_contact_from_one_sender_in_an_hour_is_not_created(
    db: Database, settings: Settings, acme: int, bob_known: None
) -> None:
    for number in range(1, 22):
        spool(db, acme, from_bob(number, CONTACT), CONTACT)
    Worker(db, settings).run_until_idle()
    created = contact_emails(db) - {SENDER}
    assert created == {f"person{n}@example.com" for n in range(1, 21)}
    # The 21st message still goes on Bob's card, and says why it did less.
    assert outcomes(db) == [("done", None)] * 20 + [("done", "loop_guard")]
    with db.transaction() as session:
        notes = crm.list_notes(session, "acme")
    assert [n["subject"] for n in notes if n["subject"] == "Hello 21"] == ["Hello 21"]

    # Another sender is not held back by Bob's count.
    spool(db, acme, from_bob(22, CONTACT, sender="Eve <eve@other.test>"), CONTACT)
    Worker(db, settings).run_until_idle()
    assert {"eve@other.test", "person22@example.com"} <= contact_emails(db)


def test_the_window_is_one_hour(
    db: Database, settings: Settings, acme: int, bob_known: None
) -> None:
    capped = settings.model_copy(update={"max_creations_per_sender_hour": 2})
    for number in (1, 2, 3):
        spool(db, acme, from_bob(number, CONTACT), CONTACT)
    Worker(db, capped).run_until_idle()
    assert contact_emails(db) == {SENDER, "person1@example.com", "person2@example.com"}
    with db.transaction() as session:
        session.execute(update(Contact).values(created_at=utcnow() - timedelta(minutes=61)))
    spool(db, acme, from_bob(4, CONTACT), CONTACT)
    Worker(db, capped).run_until_idle()
    assert "person4@example.com" in contact_emails(db)


def test_a_capped_sender_s_lead_mail_goes_on_known_cards_only(
    db: Database, settings: Settings, acme: int, bob_known: None
) -> None:
    capped = settings.model_copy(update={"max_creations_per_sender_hour": 3})
    spool(db, acme, from_bob(1, LEAD), LEAD)  # the lead and person1: 2 of 3
    spool(db, acme, from_bob(2, LEAD), LEAD)  # room for the lead, not for person2
    spool(db, acme, from_bob(3, LEAD), LEAD)  # no room: notes on Bob's cards only
    Worker(db, capped).run_until_idle()
    with db.transaction() as session:
        leads = crm.list_leads(session, "acme")
        notes = crm.list_notes(session, "acme")
        [bob] = [c["id"] for c in crm.list_contacts(session, "acme") if SENDER in c["emails"]]
    assert [lead["name"] for lead in leads] == ["Hello 1", "Hello 2"]
    assert contact_emails(db) == {SENDER, "person1@example.com"}
    assert outcomes(db) == [("done", None), ("done", "loop_guard"), ("done", "loop_guard")]
    third = {(n["entity_type"], n["entity_id"]) for n in notes if n["subject"] == "Hello 3"}
    bob_cards = {("contact", bob)} | {("lead", lead["id"]) for lead in leads}
    assert third and third <= bob_cards


def test_a_capped_message_with_no_known_card_is_ignored_with_the_reason(
    db: Database, settings: Settings, acme: int
) -> None:
    capped = settings.model_copy(update={"max_creations_per_sender_hour": 0})
    spool(db, acme, from_bob(1, CONTACT), CONTACT)
    Worker(db, capped).run_until_idle()
    assert contact_emails(db) == set()
    assert outcomes(db) == [("ignored", "loop_guard")]


def test_contacts_and_leads_record_the_sender_that_made_them(
    db: Database, settings: Settings, acme: int
) -> None:
    spool(db, acme, from_bob(1, LEAD), LEAD)
    Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        assert set(session.scalars(select(Contact.source_sender))) == {SENDER}
        assert list(session.scalars(select(Lead.source_sender))) == [SENDER]


# -- mailing lists ----------------------------------------------------------------------------


LIST_HEADERS = [
    {"List-Id": "Sales talk <sales.lists.corp.test>"},
    {"List-Unsubscribe": "<mailto:leave@lists.corp.test>"},
    {"List-Post": "<mailto:sales@lists.corp.test>"},
]


@pytest.mark.parametrize("headers", LIST_HEADERS)
def test_list_headers_classify_as_list_traffic(headers: dict[str, str]) -> None:
    parsed = parse_message(wire_bytes(message(headers=headers)))
    assert machine_made(parsed, SENDER) == "list"
    assert machine_made(parse_message(wire_bytes(message())), SENDER) is None


@pytest.mark.parametrize("rcpt", [CONTACT, LEAD])
def test_list_traffic_creates_no_contact_and_no_lead(
    db: Database, settings: Settings, acme: int, rcpt: str
) -> None:
    raw = wire_bytes(message(cc=rcpt, headers={"List-Id": "<sales.lists.corp.test>"}))
    spool(db, acme, raw, rcpt)
    Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        assert crm.list_leads(session, "acme") == []
        assert crm.list_notes(session, "acme") == []
    assert contact_emails(db) == set()
    assert outcomes(db) == [("ignored", "list")]
