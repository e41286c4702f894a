"""A box disconnected with its emails deleted, then connected again: its mail is back on the cards.

Against the real Dovecot, through the services the CLI calls (connect, sync, disconnect), and
the real SMTP intake and worker for the smart-address copies of the same message.
"""

from datetime import timedelta
from typing import Any

from crmmail.processor.worker import Worker
from crmmail.services import crm, deleted, mailbox_rules
from crmmail.storage.base import utcnow
from tests.connector.conftest import PostOffice, mail
from tests.intake import running_intake, send

NOTE = "acme@mail.localhost"
CONTACT = "acme+contact@mail.localhost"
ANN = "ann@customer.test"


def ann_with_a_lead(post: PostOffice) -> tuple[int, int]:
    ann = post.add_contact(ANN, "Ann Lee")
    with post.db.transaction() as session:
        lead = int(crm.add_lead(session, "acme", "Widgets", [ANN])["id"])
    return ann, lead


def disconnect_deleting_emails(post: PostOffice, mailbox_id: int) -> None:
    mailbox_rules.disconnect_mailbox(
        post.db, post.settings, mailbox_id, post.email, delete_emails=True
    )


def to_smart_address(post: PostOffice, raw: bytes, address: str = NOTE) -> None:
    """Deliver a copy to a smart address over SMTP and let a worker process it."""
    with running_intake(post.db, post.settings) as port:
        send(port, raw, [address], ANN)
    Worker(post.db, post.settings).run_until_idle()


def shown(post: PostOffice) -> list[tuple[str, int, str, bool]]:
    """Each note: its card, subject and whether its content was removed."""
    return sorted(
        (n["entity_type"], n["entity_id"], n["subject"], n["content_removed"]) for n in post.notes()
    )


def sources(post: PostOffice) -> set[tuple[Any, Any]]:
    """Where the notes' content comes from: (email id, inbound id)."""
    return {(n["email_id"], n["inbound_id"]) for n in post.notes()}


def test_a_reconnected_box_puts_its_mail_back_on_the_cards_readable_once(
    post: PostOffice,
) -> None:
    ann, lead = ann_with_a_lead(post)
    post.deliver(mail("Private offer", to=post.email))
    box = post.connect()
    post.sync(box["id"])
    disconnect_deleting_emails(post, box["id"])
    assert shown(post) == [("contact", ann, "", True), ("lead", lead, "", True)]

    post.connect()
    post.sync(box["id"])

    [email] = post.emails()
    assert email["contact_ids"] == [ann]
    expected = [("contact", ann, "Private offer", False), ("lead", lead, "Private offer", False)]
    assert shown(post) == expected
    assert sources(post) == {(email["id"], None)}
    assert {n["from"] for n in post.notes()} == {"Ann Lee <ann@customer.test>"}
    post.deliver(mail("Later", to=post.email))
    post.sync(box["id"])  # a later sync leaves them as they are
    assert [n for n in shown(post) if n[2] == "Private offer"] == expected


def test_a_smart_address_copy_while_disconnected_gives_the_notes_back(post: PostOffice) -> None:
    ann, lead = ann_with_a_lead(post)
    raw = mail("Offer", to=post.email, cc=NOTE)
    post.deliver(raw)
    box = post.connect()
    post.sync(box["id"])
    disconnect_deleting_emails(post, box["id"])

    to_smart_address(post, raw)

    assert shown(post) == [("contact", ann, "Offer", False), ("lead", lead, "Offer", False)]
    [(email_id, inbound_id)] = sources(post)
    assert email_id is None and inbound_id is not None
    post.connect()
    post.sync(box["id"])
    assert [e["subject"] for e in post.emails()] == ["Offer"]
    assert shown(post) == [("contact", ann, "Offer", False), ("lead", lead, "Offer", False)]
    assert sources(post) == {(None, inbound_id)}


def test_deleting_a_box_s_emails_keeps_the_smart_address_notes_of_the_same_message(
    post: PostOffice,
) -> None:
    ann, lead = ann_with_a_lead(post)
    raw = mail("Offer", to=post.email, cc=NOTE)
    to_smart_address(post, raw)
    [(_, inbound_id)] = sources(post)
    post.deliver(raw)
    box = post.connect()
    post.sync(box["id"])
    assert [e["contact_ids"] for e in post.emails()] == [[ann]]

    disconnect_deleting_emails(post, box["id"])
    post.connect()
    post.sync(box["id"])

    assert shown(post) == [("contact", ann, "Offer", False), ("lead", lead, "Offer", False)]
    assert sources(post) == {(None, inbound_id)}


def test_an_email_deleted_and_purged_in_the_crm_stays_without_content(post: PostOffice) -> None:
    """The purge's tombstone wins over a later copy, as over a later sync."""
    ann = post.add_contact(ANN, "Ann Lee")
    raw = mail("Gone", to=post.email, cc=CONTACT)
    post.deliver(raw)
    box = post.connect()
    post.sync(box["id"])
    [email] = post.emails()
    with post.db.transaction() as session:
        deleted.delete_email(session, email["id"], post.email, utcnow())
        assert deleted.purge_deleted(session, utcnow() + timedelta(days=31)) == 1

    to_smart_address(post, raw, CONTACT)
    post.sync(box["id"])

    assert shown(post) == [("contact", ann, "", True)]
