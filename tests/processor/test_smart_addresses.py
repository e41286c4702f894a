"""Smart-address mail end to end: SMTP in, worker, notes, contacts and leads out."""

from sqlalchemy import select, update

from crmmail.services import crm
from crmmail.storage.models import Attachment, InboundMessage, Lead, LeadStatus
from tests.intake import message
from tests.processor.conftest import Mailroom

NOTE = "acme@mail.localhost"
CONTACT = "acme+contact@mail.localhost"
LEAD = "acme+lead@mail.localhost"


def add_contact(room: Mailroom, email: str, name: str = "") -> int:
    with room.db.transaction() as session:
        return int(crm.add_contact(session, "acme", email, name, ("mail.localhost",))["id"])


def test_note_goes_to_known_contact_and_its_open_leads_and_customers(mailroom: Mailroom) -> None:
    ann = add_contact(mailroom, "ann@example.com", "Ann Lee")
    with mailroom.db.transaction() as session:
        open_lead = crm.add_lead(session, "acme", "Widgets", ["ann@example.com"])["id"]
        won_lead = crm.add_lead(session, "acme", "Old deal", ["ann@example.com"])["id"]
        customer = crm.add_customer(session, "acme", "Example Ltd", ["ann@example.com"])["id"]
        session.execute(update(Lead).where(Lead.id == won_lead).values(status=LeadStatus.WON))
    mailroom.deliver(message(to="Ann Lee <ANN@Example.COM>", cc=NOTE), [NOTE])
    assert mailroom.outcomes() == [("done", None)]
    assert mailroom.cards() == {("contact", ann), ("lead", open_lead), ("customer", customer)}
    [note, *_] = mailroom.notes()
    assert note["subject"] == "Quote for 100 widgets"
    assert note["message_id"] == "quote-1@corp.test"
    assert note["from"] == "Bob Buyer <bob@corp.test>"


def test_a_contact_is_matched_on_any_of_its_addresses(mailroom: Mailroom) -> None:
    with mailroom.db.transaction() as session:
        ann = (
            crm.CrmRepository(session, 1)
            .create_contact("Ann Lee", "Ann", ["ann@example.com", "ann.lee@home.test"])
            .id
        )
    mailroom.deliver(message(to="ann.lee@HOME.test"), [NOTE])
    assert mailroom.cards() == {("contact", ann)}


def test_no_known_participant_is_ignored_but_kept(mailroom: Mailroom) -> None:
    mailroom.deliver(message(), [NOTE])
    assert mailroom.outcomes() == [("ignored", "no_match")]
    assert mailroom.notes() == []
    with mailroom.db.transaction() as session:
        assert session.scalar(select(InboundMessage.raw)).startswith(b"From: Bob Buyer")


def test_bcc_only_address_creates_nothing(mailroom: Mailroom) -> None:
    mailroom.deliver(message(cc=None), [CONTACT])
    assert mailroom.outcomes() == [("ignored", "bcc")]
    assert mailroom.contacts() == []


def test_contact_address_creates_contacts_with_decoded_names(mailroom: Mailroom) -> None:
    existing = add_contact(mailroom, "ann@example.com", "Ann Lee")
    mail = message(
        sender="=?utf-8?q?J=C3=BCrgen_Gro=C3=9F?= <JG@Gross.test>",
        to='Ann <ann@example.com>, "Smith, John" <john.smith@corp.test>, Me <ME@acme.test>',
        cc=f"Acme CRM <{CONTACT.upper()}>, mary.o-neil@corp.test",
    )
    mailroom.deliver(mail, [CONTACT.upper()])
    assert mailroom.outcomes() == [("done", None)]
    contacts = {c["emails"][0]: (c["name"], c["first_name"]) for c in mailroom.contacts()}
    assert contacts == {
        "ann@example.com": ("Ann Lee", "Ann"),
        "jg@gross.test": ("Jürgen Groß", "Jürgen"),
        "john.smith@corp.test": ("John Smith", "John"),
        "mary.o-neil@corp.test": ("Mary O-Neil", "Mary"),
    }
    ids = {c["id"] for c in mailroom.contacts()}
    assert mailroom.cards() == {("contact", i) for i in ids}
    assert existing in ids


def test_lead_address_creates_one_lead_with_all_participants(mailroom: Mailroom) -> None:
    ann = add_contact(mailroom, "ann@example.com")
    mailroom.deliver(message(to="ann@example.com, carol@corp.test", cc=LEAD), [LEAD])
    [lead] = mailroom.leads()
    assert lead["name"] == "Quote for 100 widgets"
    emails = {c["id"]: c["emails"][0] for c in mailroom.contacts()}
    assert sorted(emails[i] for i in lead["contact_ids"]) == [
        "ann@example.com",
        "bob@corp.test",
        "carol@corp.test",
    ]
    assert ann in lead["contact_ids"]
    assert mailroom.cards() == {("lead", lead["id"])}


def test_lead_without_subject_is_named_after_the_sender(mailroom: Mailroom) -> None:
    mailroom.deliver(message(subject="", cc=LEAD), [LEAD])
    assert [lead["name"] for lead in mailroom.leads()] == ["Lead from Bob Buyer"]


def test_several_smart_addresses_act_once_each_on_one_stored_message(mailroom: Mailroom) -> None:
    mailroom.deliver(message(cc=f"{NOTE}, {CONTACT}, {LEAD}"), [NOTE, CONTACT, LEAD])
    assert mailroom.outcomes() == [("done", None)]
    [lead] = mailroom.leads()
    contacts = {c["id"] for c in mailroom.contacts()}
    assert len(contacts) == 2
    assert mailroom.cards() == {("lead", lead["id"])} | {("contact", i) for i in contacts}
    assert len(mailroom.notes()) == 3


def test_duplicate_message_id_is_stored_once(mailroom: Mailroom) -> None:
    add_contact(mailroom, "ann@example.com")
    mailroom.deliver(message(), [NOTE])
    mailroom.deliver(message(body="resent with other bytes\n"), [NOTE])
    assert mailroom.outcomes() == [("done", None), ("ignored", "duplicate")]
    assert len(mailroom.notes()) == 1


def test_same_message_to_another_address_still_acts(mailroom: Mailroom) -> None:
    add_contact(mailroom, "ann@example.com")
    mailroom.deliver(message(cc=f"{NOTE}, {LEAD}"), [NOTE])
    mailroom.deliver(message(cc=f"{NOTE}, {LEAD}"), [LEAD, NOTE])
    assert mailroom.outcomes() == [("done", None), ("done", None)]
    assert len(mailroom.leads()) == 1
    assert len(mailroom.notes()) == 3  # Ann's card, then the lead and Bob's new card


def test_without_message_id_the_content_hash_dedupes(mailroom: Mailroom) -> None:
    add_contact(mailroom, "ann@example.com")
    mail = message(message_id=None)
    mailroom.deliver(mail, [NOTE])
    mailroom.deliver(mail, [NOTE])
    mailroom.deliver(message(message_id=None, body="another message\n"), [NOTE])
    assert mailroom.outcomes() == [("done", None), ("ignored", "duplicate"), ("done", None)]
    assert [note["message_id"] for note in mailroom.notes()] == [None, None]


def test_bounces_and_auto_replies_never_create_anything(mailroom: Mailroom) -> None:
    bounce = message(
        sender="Mail Delivery System <MAILER-DAEMON@corp.test>", subject="Undelivered", cc=CONTACT
    )
    mailroom.deliver(bounce, [CONTACT], mail_from="")
    auto_reply = message(cc=LEAD, headers={"Auto-Submitted": "auto-replied"})
    mailroom.deliver(auto_reply, [LEAD])
    out_of_office = message(cc=CONTACT, subject="Automatic reply: Quote", message_id="<o@x>")
    mailroom.deliver(out_of_office, [CONTACT])
    assert mailroom.outcomes() == [
        ("ignored", "bounce"),
        ("ignored", "auto_reply"),
        ("ignored", "auto_reply"),
    ]
    assert mailroom.contacts() == []
    assert mailroom.leads() == []


def test_users_and_smart_addresses_are_never_participants(mailroom: Mailroom) -> None:
    mail = message(sender="Me <me@acme.test>", to="other+x@mail.localhost", cc=CONTACT)
    mailroom.deliver(mail, [CONTACT])
    assert mailroom.outcomes() == [("ignored", "no_participants")]
    assert mailroom.contacts() == []


def test_attachments_are_stored_once_per_message(mailroom: Mailroom) -> None:
    add_contact(mailroom, "ann@example.com")
    mail = message(cc=f"{NOTE}, {LEAD}")
    mail.add_attachment(b"%PDF-1.4 quote", maintype="application", subtype="pdf", filename="q.pdf")
    mailroom.deliver(mail, [NOTE, LEAD])
    assert len(mailroom.notes()) == 3  # Ann's card, Bob's new card, the lead
    with mailroom.db.transaction() as session:
        [attachment] = session.scalars(select(Attachment)).all()
        assert (attachment.filename, attachment.content) == ("q.pdf", b"%PDF-1.4 quote")
        assert attachment.size == 14


def test_visibility_compares_smart_addresses_not_strings(mailroom: Mailroom) -> None:
    mailroom.deliver(message(cc='"acme+contact"@MAIL.localhost'), ["Acme+Contact@mail.localhost"])
    assert mailroom.outcomes() == [("done", None)]
    assert len(mailroom.contacts()) == 2


def test_a_lead_needs_no_participants(mailroom: Mailroom) -> None:
    # A user forwards an enquiry from their own address: the lead is created, without contacts.
    mail = message(sender="Me <me@acme.test>", to=LEAD, cc=None, subject="Fwd: enquiry")
    mailroom.deliver(mail, [LEAD])
    assert [(lead["name"], lead["contact_ids"]) for lead in mailroom.leads()] == [("enquiry", [])]


def test_oversized_fields_are_bounded_not_fatal(mailroom: Mailroom) -> None:
    long_local = "x" * 400
    mail = message(
        sender=f"{'N' * 500} <bob@corp.test>",
        to=f"{long_local}@corp.test, carol@corp.test",
        cc=LEAD,
        subject="S" * 5000,
    )
    mail.add_attachment(b"data", maintype="application", subtype="y" * 400, filename="f.bin")
    mailroom.deliver(mail, [LEAD])
    assert mailroom.outcomes() == [("done", None)]
    [lead] = mailroom.leads()
    assert len(lead["name"]) == 300
    emails = sorted(c["emails"][0] for c in mailroom.contacts())
    assert emails == ["bob@corp.test", "carol@corp.test"]
    assert all(len(c["name"]) <= 200 for c in mailroom.contacts())


def test_a_resent_copy_acts_on_nothing_even_when_the_note_found_no_card(
    mailroom: Mailroom,
) -> None:
    mail = message(to="carol@corp.test", cc=f"{NOTE}, {CONTACT}")
    mailroom.deliver(mail, [NOTE, CONTACT])
    mailroom.deliver(mail, [NOTE, CONTACT])
    assert mailroom.outcomes() == [("done", None), ("ignored", "duplicate")]
    assert len(mailroom.contacts()) == 2
    assert len(mailroom.notes()) == 2
