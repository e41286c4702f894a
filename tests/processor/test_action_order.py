"""Two smart addresses of one message: the same cards get the note whatever the arrival order.

The creating actions (``+contact``, ``+lead``) run first, then the note goes on every card that
exists after them: in one delivery with both addresses in the envelope, or in two deliveries of
the same message (each envelope holding one address, both visible in Cc), in either order.
"""

import pytest

from crmmail.services import crm
from tests.intake import message
from tests.processor.conftest import Mailroom

NOTE = "acme@mail.localhost"
CONTACT = "acme+contact@mail.localhost"
LEAD = "acme+lead@mail.localhost"
CARL = "carl@client.test"


def carl_with_cards(room: Mailroom) -> None:
    """Carl is a contact with an open lead and a customer; Bob (the sender) is unknown."""
    with room.db.transaction() as session:
        crm.add_contact(session, "acme", CARL, "Carl", room.settings.smart_domains)
        crm.add_lead(session, "acme", "Carl's deal", [CARL])
        crm.add_customer(session, "acme", "Client Ltd", [CARL])


def noted_cards(room: Mailroom) -> list[tuple[str, str]]:
    """The cards showing the message, named (contact by address, lead and customer by name)."""
    with room.db.read() as session:
        names = {("contact", c["id"]): c["emails"][0] for c in crm.list_contacts(session, "acme")}
        names |= {("lead", lead["id"]): lead["name"] for lead in crm.list_leads(session, "acme")}
        names |= {("customer", c["id"]): c["name"] for c in crm.list_customers(session, "acme")}
    notes = room.notes()
    assert all(n["subject"] == "Quote for 100 widgets" for n in notes)
    return sorted((n["entity_type"], names[(n["entity_type"], n["entity_id"])]) for n in notes)


WITH_LEAD = [
    ("contact", "bob@corp.test"),
    ("contact", CARL),
    ("customer", "Client Ltd"),
    ("lead", "Carl's deal"),
    ("lead", "Quote for 100 widgets"),
]
WITH_CONTACT = [
    ("contact", "bob@corp.test"),
    ("contact", CARL),
    ("customer", "Client Ltd"),
    ("lead", "Carl's deal"),
]


@pytest.mark.parametrize(
    ("creating", "deliveries", "expected"),
    [
        (LEAD, [[NOTE, LEAD]], WITH_LEAD),
        (LEAD, [[NOTE], [LEAD]], WITH_LEAD),
        (LEAD, [[LEAD], [NOTE]], WITH_LEAD),
        (CONTACT, [[NOTE, CONTACT]], WITH_CONTACT),
        (CONTACT, [[NOTE], [CONTACT]], WITH_CONTACT),
        (CONTACT, [[CONTACT], [NOTE]], WITH_CONTACT),
    ],
    ids=[
        "lead-together",
        "note-then-lead",
        "lead-then-note",
        "contact-together",
        "note-then-contact",
        "contact-then-note",
    ],
)
def test_the_note_reaches_the_same_cards_in_any_order(
    mailroom: Mailroom,
    creating: str,
    deliveries: list[list[str]],
    expected: list[tuple[str, str]],
) -> None:
    carl_with_cards(mailroom)
    mail = message(to=f"Carl <{CARL}>", cc=f"{NOTE}, {creating}")
    for envelope in deliveries:
        mailroom.deliver(mail, envelope)
    assert mailroom.outcomes() == [("done", None)] * len(deliveries)
    assert noted_cards(mailroom) == expected  # each card once, the new ones included


def test_a_third_copy_adds_nothing(mailroom: Mailroom) -> None:
    carl_with_cards(mailroom)
    mail = message(to=f"Carl <{CARL}>", cc=f"{NOTE}, {LEAD}")
    mailroom.deliver(mail, [NOTE])
    mailroom.deliver(mail, [LEAD])
    mailroom.deliver(mail, [NOTE, LEAD])
    assert mailroom.outcomes() == [("done", None), ("done", None), ("ignored", "duplicate")]
    assert len(mailroom.leads()) == 2
    assert noted_cards(mailroom) == WITH_LEAD


def test_a_capped_lead_after_the_note_keeps_to_known_cards(mailroom: Mailroom) -> None:
    """The loop guard still holds: no room for the lead, nothing created, known cards only."""
    carl_with_cards(mailroom)
    mailroom.settings = mailroom.settings.model_copy(update={"max_creations_per_sender_hour": 0})
    mail = message(to=f"Carl <{CARL}>", cc=f"{NOTE}, {LEAD}")
    mailroom.deliver(mail, [NOTE])
    mailroom.deliver(mail, [LEAD])
    assert mailroom.outcomes() == [("done", None), ("done", "loop_guard")]
    assert [c["emails"][0] for c in mailroom.contacts()] == [CARL]
    assert noted_cards(mailroom) == [
        ("contact", CARL),
        ("customer", "Client Ltd"),
        ("lead", "Carl's deal"),
    ]


NOBODY_KNOWN_WITH_LEAD = [
    ("contact", "bob@corp.test"),
    ("contact", CARL),
    ("lead", "Quote for 100 widgets"),
]
NOBODY_KNOWN_WITH_CONTACT = [("contact", "bob@corp.test"), ("contact", CARL)]


@pytest.mark.parametrize(
    ("creating", "deliveries", "outcomes", "expected"),
    [
        (LEAD, [[NOTE, LEAD]], [("done", None)], NOBODY_KNOWN_WITH_LEAD),
        (LEAD, [[NOTE], [LEAD]], [("ignored", "no_match"), ("done", None)], NOBODY_KNOWN_WITH_LEAD),
        (LEAD, [[LEAD], [NOTE]], [("done", None), ("done", None)], NOBODY_KNOWN_WITH_LEAD),
        (
            CONTACT,
            [[NOTE], [CONTACT]],
            [("ignored", "no_match"), ("done", None)],
            NOBODY_KNOWN_WITH_CONTACT,
        ),
    ],
    ids=["lead-together", "note-then-lead", "lead-then-note", "note-then-contact"],
)
def test_a_note_that_found_no_card_reaches_the_cards_made_later(
    mailroom: Mailroom,
    creating: str,
    deliveries: list[list[str]],
    outcomes: list[tuple[str, str | None]],
    expected: list[tuple[str, str]],
) -> None:
    """Nobody is known yet: the note-only copy finds no card and is ignored, so the ledger holds
    no note; the creating copy that follows still puts it on the contacts it makes."""
    mail = message(to=f"Carl <{CARL}>", cc=f"{NOTE}, {creating}")
    for envelope in deliveries:
        mailroom.deliver(mail, envelope)
    assert mailroom.outcomes() == outcomes
    assert noted_cards(mailroom) == expected
