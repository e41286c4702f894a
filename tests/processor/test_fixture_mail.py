"""Mail as real clients write it (``tests/data/*.eml``), delivered over SMTP and processed."""

from pathlib import Path

from sqlalchemy import select

from crmmail.services import crm
from crmmail.storage.models import Attachment
from tests.processor.conftest import Mailroom

DATA = Path(__file__).resolve().parents[1] / "data"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_outlook_reply_lands_on_the_contact_with_its_inline_image(mailroom: Mailroom) -> None:
    with mailroom.db.transaction() as session:
        ann = crm.add_contact(
            session, "acme", "ann.lee@example.com", "Ann Lee", ("mail.localhost",)
        )
    mailroom.deliver(fixture("outlook-reply.eml"), ["acme@mail.localhost"])
    assert mailroom.outcomes() == [("done", None)]
    [note] = mailroom.notes()
    assert (note["entity_type"], note["entity_id"]) == ("contact", ann["id"])
    assert note["subject"] == "RE: Quote for 100 widgets"
    assert note["from"] == '"Lee, Ann" <ann.lee@example.com>'
    assert note["date"] == "2026-11-23T09:14:02+00:00"
    with mailroom.db.transaction() as session:
        [image] = session.scalars(select(Attachment)).all()
        assert (image.filename, image.content_type) == ("image001.png", "image/png")
        assert image.content.startswith(b"\x89PNG\r\n") and image.size == len(image.content)


def test_gmail_lead_with_encoded_names(mailroom: Mailroom) -> None:
    mailroom.deliver(fixture("gmail-encoded-names.eml"), ["acme+lead@mail.localhost"])
    [lead] = mailroom.leads()
    assert lead["name"] == "Anfrage für 200 Stühle"
    names = sorted((c["name"], c["first_name"]) for c in mailroom.contacts())
    assert names == [
        ("Françoise Müller", "Françoise"),
        ("Jürgen Groß", "Jürgen"),
        ("Sales", "Sales"),
    ]


def test_out_of_office_and_delivery_failure_create_nothing(mailroom: Mailroom) -> None:
    mailroom.deliver(fixture("exchange-out-of-office.eml"), ["acme+contact@mail.localhost"])
    mailroom.deliver(
        fixture("gmail-delivery-failure.eml"), ["acme+contact@mail.localhost"], mail_from=""
    )
    assert mailroom.outcomes() == [("ignored", "auto_reply"), ("ignored", "bounce")]
    assert mailroom.contacts() == []
