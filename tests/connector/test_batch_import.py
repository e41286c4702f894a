"""A first import in several batches: stored together, parsed in worker processes, and still
the same outcome as one message at a time (duplicates, threads, attachments, links, notes,
and the one message that fails kept aside while the rest of its batch goes on)."""

from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import select

from crmmail.connector.capture import Incoming, parse_mail
from crmmail.connector.parsing import MailParser
from crmmail.storage.database import Database
from crmmail.storage.models import Email, EmailAttachment
from tests.connector.conftest import PostOffice, mail
from tests.faults import fail_inserts, heal

PDF = b"%PDF-1.4 " + bytes(range(256)) * 40  # 10,249 bytes once decoded


def _with_attachment(subject: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Ann Lee <ann@customer.test>"
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@customer.test>"
    message.set_content("see the file\n")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="offer.pdf")
    return message.as_bytes()


def _stored(db: Database) -> list[Email]:
    with db.read() as session:
        return list(session.scalars(select(Email).order_by(Email.uid)))


def test_a_first_import_in_batches_stores_what_one_at_a_time_would(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    twice = mail("the same message twice")
    for raw in (
        mail("Quote", date=post.now),
        mail("Re: Quote"),
        twice,  # UIDs 3 and 4: one batch of two, the second copy is known
        twice,
        _with_attachment("with a file"),
        mail("from a stranger", sender="Zed <zed@unknown.test>"),
        mail("Quote", sender="Bo <bo@customer.test>"),
    ):
        post.deliver(raw)
    box = post.connect()
    settings = post.settings.model_copy(update={"import_batch": 2})

    result = post.sync(box["id"], settings)

    assert result.status == "active"
    assert (result.report.imported, result.report.known, result.report.quarantined) == (6, 1, 0)
    emails = _stored(post.db)
    subjects = [email.subject for email in emails]
    assert subjects == [
        "Quote",
        "Re: Quote",
        "the same message twice",
        "with a file",
        "from a stranger",
        "Quote",
    ]
    ann_quote, ann_reply, _, _, _, bo_quote = emails
    assert ann_quote.thread_id == ann_reply.thread_id != bo_quote.thread_id
    assert len({email.thread_id for email in emails}) == 5
    with post.db.read() as session:
        [file] = session.scalars(select(EmailAttachment))
    assert (file.email_id, file.filename, file.content_type, file.size) == (
        emails[3].id,
        "offer.pdf",
        "application/pdf",
        len(PDF),
    )
    linked = {email["subject"]: email["contact_ids"] for email in post.emails()}
    assert linked["from a stranger"] == [] and linked["with a file"] == [ann]
    on_ann = [note for note in post.notes() if note["entity_id"] == ann]
    assert sorted(note["subject"] for note in on_ann) == [
        "Quote",
        "Re: Quote",
        "the same message twice",
        "with a file",
    ]
    assert post.sync(box["id"], settings).report.imported == 0


def test_one_message_that_will_not_store_leaves_its_batch_stored(
    post: PostOffice, db: Database
) -> None:
    for n in range(6):
        post.deliver(mail(f"message {n}"))
    box = post.connect()
    fail_inserts(db, "email", "new.subject = 'message 3'")
    settings = post.settings.model_copy(update={"import_batch": 3})

    result = post.sync(box["id"], settings)

    assert (result.report.imported, result.report.quarantined) == (5, 1)
    kept = {email.subject: email.quarantined for email in _stored(db)}
    assert len(kept) == 6 and kept[""] is not None and kept[""].startswith("storing failed")
    heal(db, "email")


def test_one_email_whose_linking_fails_alone_stays_unlinked(post: PostOffice, db: Database) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    for n in range(3):
        post.deliver(mail(f"message {n}"))
    box = post.connect()
    fail_inserts(
        db, "email_contact", "new.email_id = (SELECT id FROM email WHERE subject = 'message 1')"
    )

    result = post.sync(box["id"])

    heal(db, "email_contact")
    assert (result.report.imported, result.report.quarantined) == (2, 1)
    state = {e.subject: e.quarantined for e in _stored(db)}
    assert state["message 0"] is None and state["message 2"] is None
    assert (state["message 1"] or "").startswith("linking failed")
    linked = {email["subject"]: email["contact_ids"] for email in post.emails()}
    assert linked == {"message 0": [ann], "message 1": [], "message 2": [ann]}


def test_worker_processes_parse_as_this_process_does() -> None:
    raws = [_with_attachment("a file"), mail("plain"), b"not even a header\r\n"]
    here = [Incoming.of(raw, parse_mail(raw)) for raw in raws]

    with MailParser(workers=2) as parser:
        there = parser.parse(raws)

    assert there == here
    assert [len(incoming.files) for incoming in there] == [1, 0, 0]
    assert there[0].files[0].size == len(PDF)
