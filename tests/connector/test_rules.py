"""Mailbox rules against the real Dovecot: threads, the Deleted folder, attachments on demand,
disconnecting and reconnecting, templates."""

from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from crmmail.errors import AlreadyExists, UserInputError
from crmmail.services import crm, deleted, mail_views, mailbox_rules, templates
from crmmail.services.attachments import AttachmentUnavailable, get_attachment
from crmmail.services.emails import SendRequest, TemplateChoice, send_email
from crmmail.services.permissions import PermissionDenied
from crmmail.storage.base import utcnow
from crmmail.storage.models import MailboxKind
from crmmail.templates.render import TemplateError
from tests.connector.conftest import PostOffice, mail

ADMIN = "me@acme.test"


def _threads(post: PostOffice) -> list[tuple[str, int]]:
    with post.db.read() as session:
        threads = mail_views.list_threads(session, "acme", post.email)
    return sorted((t["counterpart"], len(t["message_ids"])) for t in threads)


def test_threads_follow_counterpart_and_normalised_subject(post: PostOffice) -> None:
    post.deliver(mail("Quote", sender="a@x.test", to=post.email))
    post.deliver(mail("Quote", sender="b@y.test", to=post.email))
    post.deliver(mail("RE: AW: quote", sender=post.email, to="a@x.test"), "Sent")
    box = post.connect()

    post.sync(box["id"])

    assert _threads(post) == [("a@x.test", 2), ("b@y.test", 1)]
    with post.db.transaction() as session:
        mailbox_rules.set_mailbox(session, box["id"], post.email, threads=False)
    assert _threads(post) == [("a@x.test", 1), ("a@x.test", 1), ("b@y.test", 1)]
    with post.db.transaction() as session:
        mailbox_rules.set_mailbox(session, box["id"], post.email, threads=True)
    assert _threads(post) == [("a@x.test", 2), ("b@y.test", 1)]


def test_deleted_emails_leave_listings_and_come_back_only_by_restore(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    post.deliver(mail("to delete"))
    box = post.connect(share_with_admin=True)
    post.sync(box["id"])
    [email] = post.emails()

    with post.db.transaction() as session:
        deleted.delete_email(session, email["id"], post.email, utcnow())

    assert post.emails() == [] and _threads(post) == [] and post.notes() == []
    with post.db.read() as session, pytest.raises(PermissionDenied, match="only admins"):
        mail_views.list_deleted(session, "acme", post.email)
    with post.db.read() as session:
        assert [e["id"] for e in mail_views.list_deleted(session, "acme", ADMIN)] == [email["id"]]
    post.deliver(mail("new mail"))
    post.sync(box["id"])
    assert [e["subject"] for e in post.emails()] == ["new mail"]  # the sync did not revive it
    with post.db.transaction() as session:
        deleted.restore_email(session, email["id"], ADMIN)
    assert sorted(e["subject"] for e in post.emails()) == ["new mail", "to delete"]
    notes = post.notes()
    assert {n["entity_id"] for n in notes} == {ann}
    assert sorted(n["subject"] for n in notes) == ["new mail", "to delete"]


def test_the_purge_removes_after_30_days_and_no_sync_brings_it_back(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    post.deliver(mail("old news"))
    box = post.connect()
    post.sync(box["id"])
    [email] = post.emails()
    deleted_at = utcnow() - timedelta(days=29)
    with post.db.transaction() as session:
        deleted.delete_email(session, email["id"], post.email, deleted_at)
        assert deleted.purge_deleted(session, utcnow()) == 0  # 29 days: kept

    with post.db.transaction() as session:
        assert deleted.purge_deleted(session, utcnow() + timedelta(days=2)) == 1

    with post.db.read() as session:
        assert mail_views.list_deleted(session, "acme", ADMIN) == []
    [note] = post.notes()
    assert note["entity_id"] == ann and note["content_removed"] is True
    post.dovecot.set_uidvalidity(post.email, "INBOX", 31337)  # forces a re-map of everything
    post.sync(box["id"])
    assert post.emails() == []


def _with_attachment() -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "ann@customer.test"
    message["To"] = "someone@example.com"
    message["Subject"] = "the contract"
    message["Message-ID"] = "<contract-1@customer.test>"
    message.set_content("See attached.")
    message.add_attachment(
        b"%PDF-1.4 contract", maintype="application", subtype="pdf", filename="contract.pdf"
    )
    return message.as_bytes()


def test_attachments_come_from_the_server_until_it_deletes_the_email(post: PostOffice) -> None:
    uid = post.deliver(_with_attachment())
    box = post.connect()
    post.sync(box["id"])
    [email] = post.emails()
    with post.db.read() as session:
        shown = mail_views.show_email(session, email["id"], post.email)
    [listed] = shown["attachments"]
    assert (listed["filename"], listed["size"]) == ("contract.pdf", 17)

    found = get_attachment(post.db, post.settings, listed["id"], post.email)

    assert (found.filename, found.content) == ("contract.pdf", b"%PDF-1.4 contract")
    post.dovecot.expunge(post.email, "INBOX", [uid])
    with pytest.raises(AttachmentUnavailable, match="deleted on the mail server"):
        get_attachment(post.db, post.settings, listed["id"], post.email)  # before the sync knows
    post.sync(box["id"])
    assert post.emails()[0]["deleted_on_server"] is True
    with pytest.raises(AttachmentUnavailable, match="deleted on the mail server"):
        get_attachment(post.db, post.settings, listed["id"], post.email)


def test_disconnect_keeping_emails_then_reconnect_resumes(post: PostOffice) -> None:
    post.deliver(mail("before"))
    box = post.connect()
    post.sync(box["id"])

    mailbox_rules.disconnect_mailbox(
        post.db, post.settings, box["id"], post.email, delete_emails=False
    )

    [listed] = post.mailboxes()
    assert listed["status"] == "disconnected"
    assert [e["subject"] for e in post.emails()] == ["before"]
    with pytest.raises(UserInputError, match="disconnected"):
        post.sync(box["id"])
    post.deliver(mail("while away"))
    again = post.connect()
    assert again["id"] == box["id"] and again["status"] == "active"
    with pytest.raises(AlreadyExists):
        post.connect()
    result = post.sync(box["id"])
    assert (result.report.imported, result.report.known) == (1, 0)
    assert sorted(e["subject"] for e in post.emails()) == ["before", "while away"]


def test_disconnect_deleting_emails_leaves_notes_without_content(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    post.deliver(mail("private"))
    box = post.connect()
    post.sync(box["id"])

    mailbox_rules.disconnect_mailbox(
        post.db, post.settings, box["id"], post.email, delete_emails=True
    )

    assert post.emails() == []
    for viewer in (post.email, ADMIN, None):  # what is left says nothing of the email
        [note] = post.notes(viewer) if viewer else _notes_without_user(post)
        assert (note["entity_id"], note["content_removed"]) == (ann, True)
        assert (note["subject"], note["from"], note["message_id"]) == ("", "", None)
    post.connect()
    post.sync(box["id"])
    assert [e["subject"] for e in post.emails()] == ["private"]
    assert len(post.notes()) == 1  # the card does not get it twice


def _notes_without_user(post: PostOffice) -> list[dict[str, object]]:
    with post.db.read() as session:
        return crm.list_notes(session, "acme", None)


def test_a_personal_box_is_its_owners_to_share(post: PostOffice) -> None:
    box = post.connect()
    for change in ({"share_with_admin": True}, {"kind": MailboxKind.SHARED}, {"threads": False}):
        with post.db.transaction() as session, pytest.raises(PermissionDenied, match="owner"):
            mailbox_rules.set_mailbox(session, box["id"], ADMIN, **change)  # type: ignore[arg-type]
    mailbox_rules.disconnect_mailbox(post.db, post.settings, box["id"], ADMIN, delete_emails=False)
    with pytest.raises(UserInputError, match="another user's personal mailbox"):
        post.connect(user_email=ADMIN)
    with pytest.raises(UserInputError, match="was a personal mailbox"):
        post.connect(shared=True, user_email=ADMIN)
    assert post.connect()["status"] in ("importing", "active")


def test_only_owner_or_admin_manage_a_box(post: PostOffice) -> None:
    box = post.connect(shared=True, user_email=ADMIN)
    with post.db.transaction() as session, pytest.raises(PermissionDenied):
        mailbox_rules.set_mailbox(session, box["id"], post.email, threads=False)
    with pytest.raises(PermissionDenied):
        mailbox_rules.disconnect_mailbox(
            post.db, post.settings, box["id"], post.email, delete_emails=True
        )
    with post.db.transaction() as session:
        changed = mailbox_rules.set_mailbox(session, box["id"], ADMIN, kind=MailboxKind.PERSONAL)
    assert changed["kind"] == "personal"


def test_a_template_fills_the_contact_and_lead_and_escapes_html(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann <b>Lee</b>")
    with post.db.transaction() as session:
        lead = crm.add_lead(session, "acme", "Widgets & Co", ["ann@customer.test"])
        templates.add_template(
            session,
            "acme",
            "offer",
            "Offer for {{lead.name}}",
            "<p>Hello {{contact.name}},</p><p>{{user.name}}</p>",
            True,
        )
    box = post.connect()
    request = SendRequest(
        mailbox_id=box["id"],
        as_user=post.email,
        to=[],
        cc=[],
        template=TemplateChoice("offer", ann, lead["id"]),
    )

    send_email(post.db, post.settings, request)

    [received] = post.submission.messages
    message = message_from_bytes(received.raw)
    assert list(received.rcpt_tos) == ["ann@customer.test"]
    assert message["Subject"] == "Offer for Widgets & Co"
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    assert b"Hello Ann &lt;b&gt;Lee&lt;/b&gt;," in parts["text/html"]
    assert b"Hello Ann <b>Lee</b>," in parts["text/plain"]
    assert b"Una User" in parts["text/html"]


def test_a_template_missing_its_lead_sends_nothing(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    with post.db.transaction() as session:
        templates.add_template(session, "acme", "t", "About {{lead.name}}", "Hi", False)
    box = post.connect()
    request = SendRequest(
        mailbox_id=box["id"], as_user=post.email, to=[], cc=[], template=TemplateChoice("t", ann)
    )

    with pytest.raises(TemplateError, match="no lead was given"):
        send_email(post.db, post.settings, request)
    assert post.submission.messages == []
