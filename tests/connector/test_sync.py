"""Sync against a real Dovecot: first import, increments, expunges, UIDVALIDITY, resumption."""

from datetime import timedelta

import pytest

from crmmail.storage.database import Database
from crmmail.storage.models import Email
from tests.connector.conftest import PostOffice, mail
from tests.faults import fail_inserts, fail_updates, heal


def test_first_import_takes_the_newest_messages_of_the_window(post: PostOffice) -> None:
    settings = post.settings.model_copy(update={"import_limit": 3, "import_days": 30})
    for age in (60, 45, 31):  # older than the window
        post.deliver(mail(f"old {age}"), days_ago=age)
    for age in (20, 10, 5, 2, 1):
        post.deliver(mail(f"recent {age}"), days_ago=age)
    box = post.connect()
    assert box["status"] == "importing"

    result = post.sync(box["id"], settings)

    assert result.status == "active"
    subjects = sorted(email["subject"] for email in post.emails())
    assert subjects == ["recent 1", "recent 2", "recent 5"]
    listed = post.mailboxes()[0]
    assert listed["status"] == "active" and listed["last_sync_at"] is not None


def test_first_import_leaves_out_mail_older_than_the_window(post: PostOffice) -> None:
    settings = post.settings.model_copy(update={"import_limit": 10, "import_days": 30})
    post.deliver(mail("older"), days_ago=40)
    post.deliver(mail("newer"), days_ago=3)
    box = post.connect()

    post.sync(box["id"], settings)

    assert [email["subject"] for email in post.emails()] == ["newer"]
    post.deliver(mail("arrived later"))
    assert post.sync(box["id"], settings).report.imported == 1  # increments are not windowed


def test_the_limit_counts_inbox_and_sent_together(post: PostOffice) -> None:
    settings = post.settings.model_copy(update={"import_limit": 4})
    for age, folder in ((9, "INBOX"), (8, "Sent"), (7, "INBOX"), (4, "Sent"), (3, "INBOX")):
        post.deliver(mail(f"{folder} {age}", sender=post.email), folder, days_ago=age)
    post.deliver(mail("Sent 1", sender=post.email), "Sent", days_ago=1)
    box = post.connect()

    post.sync(box["id"], settings)

    subjects = sorted(email["subject"] for email in post.emails())
    assert subjects == ["INBOX 3", "INBOX 7", "Sent 1", "Sent 4"]


def test_import_sets_no_flag_on_the_server(post: PostOffice) -> None:
    uids = [post.deliver(mail(f"unread {n}")) for n in range(3)]
    box = post.connect()

    post.sync(box["id"])

    assert len(post.emails()) == 3
    flags = post.dovecot.flags(post.email, "INBOX")
    assert sorted(flags) == uids
    assert all(b"\\Seen" not in message_flags for message_flags in flags.values())


def test_sent_folder_is_synced_too(post: PostOffice) -> None:
    post.deliver(mail("to the customer", sender=post.email, to="ann@customer.test"), "Sent")
    post.deliver(mail("from the customer"))
    box = post.connect()

    result = post.sync(box["id"])

    assert result.report.folders == {"inbox": "INBOX", "sent": "Sent"}
    folders = {email["subject"]: email["folder"] for email in post.emails()}
    assert folders == {"to the customer": "sent", "from the customer": "inbox"}


def test_incremental_sync_fetches_only_new_mail(post: PostOffice) -> None:
    post.deliver(mail("first"))
    box = post.connect()
    post.sync(box["id"])
    post.deliver(mail("second"))
    post.deliver(mail("third"))

    result = post.sync(box["id"])

    assert result.report.imported == 2 and result.report.known == 0
    assert len(post.emails()) == 3


def test_nothing_moved_means_nothing_fetched(post: PostOffice) -> None:
    post.deliver(mail("only"))
    box = post.connect()
    post.sync(box["id"])

    result = post.sync(box["id"])

    assert result.status == "active" and result.report.unchanged == ["inbox", "sent"]
    assert result.report.bytes_fetched == 0 and result.report.imported == 0
    post.deliver(mail("moved"))
    assert post.sync(box["id"]).report.unchanged == ["sent"]


def test_a_message_expunged_on_the_server_stays_marked_deleted(post: PostOffice) -> None:
    keep = post.deliver(mail("keep"))
    gone = post.deliver(mail("gone"))
    box = post.connect()
    post.sync(box["id"])
    post.dovecot.expunge(post.email, "INBOX", [gone])

    result = post.sync(box["id"])

    assert result.report.expunged == 1
    state = {email["subject"]: email["deleted_on_server"] for email in post.emails()}
    assert state == {"keep": False, "gone": True}
    assert keep != gone


def test_uidvalidity_change_remaps_without_duplicates(post: PostOffice) -> None:
    post.deliver(mail("with id"))
    post.deliver(mail("without id", message_id=False))
    box = post.connect()
    post.sync(box["id"])
    before = {email["id"] for email in post.emails()}
    post.dovecot.set_uidvalidity(post.email, "INBOX", 777)

    result = post.sync(box["id"])

    assert result.report.remapped == 2 and result.report.imported == 0
    assert {email["id"] for email in post.emails()} == before
    post.deliver(mail("after the change"))
    assert post.sync(box["id"]).report.imported == 1
    assert len(post.emails()) == 3
    with post.db.read() as session:
        assert {row.uidvalidity for row in session.query(Email).filter_by(folder="inbox")} == {777}


def test_uidvalidity_change_with_renumbered_messages(post: PostOffice) -> None:
    raws = [mail(f"message {n}") for n in range(3)]
    uids = [post.deliver(raw) for raw in raws]
    box = post.connect()
    post.sync(box["id"])
    # The server rebuilds the folder: same messages, new UIDs in another order, new UIDVALIDITY.
    post.dovecot.expunge(post.email, "INBOX", uids)
    new_uids = [post.deliver(raw) for raw in reversed(raws)]
    post.dovecot.set_uidvalidity(post.email, "INBOX", 4242)

    result = post.sync(box["id"])

    assert (result.report.remapped, result.report.imported) == (3, 0)
    with post.db.read() as session:
        placed = {
            row.subject: (row.uidvalidity, row.uid, row.deleted_on_server)
            for row in session.query(Email).filter_by(folder="inbox")
        }
    assert placed == {
        f"message {n}": (4242, uid, False) for n, uid in zip((2, 1, 0), new_uids, strict=True)
    }


def test_uidvalidity_change_with_nothing_of_ours_left_starts_within_the_window(
    post: PostOffice,
) -> None:
    settings = post.settings.model_copy(update={"import_days": 30})
    uid = post.deliver(mail("before"))
    box = post.connect()
    post.sync(box["id"], settings)
    post.dovecot.expunge(post.email, "INBOX", [uid])
    post.deliver(mail("ancient"), days_ago=90)
    post.deliver(mail("recent"), days_ago=1)
    post.dovecot.set_uidvalidity(post.email, "INBOX", 99)

    post.sync(box["id"], settings)

    state = {email["subject"]: email["deleted_on_server"] for email in post.emails()}
    assert state == {"before": True, "recent": False}


def test_a_sync_killed_mid_batch_resumes_without_duplicates_or_gaps(
    post: PostOffice, db: Database
) -> None:
    settings = post.settings.model_copy(update={"import_batch": 2})
    for n in range(7):
        post.deliver(mail(f"message {n}"))
    box = post.connect()
    fail_updates(db, "mailbox_folder", "new.last_uid > 2")  # the 2nd batch dies at its commit

    broken = post.sync(box["id"], settings)

    assert broken.status == "error"
    assert sorted(e["subject"] for e in post.emails()) == ["message 0", "message 1"]
    heal(db, "mailbox_folder")
    resumed = post.sync(box["id"], settings)
    assert resumed.status == "active"
    assert resumed.report.imported == 5 and resumed.report.known == 0
    assert sorted(e["subject"] for e in post.emails()) == [f"message {n}" for n in range(7)]


def test_a_message_that_will_not_store_is_quarantined_and_the_box_goes_on(
    post: PostOffice, db: Database
) -> None:
    for n in range(4):
        post.deliver(mail(f"message {n}"))
    box = post.connect()
    fail_inserts(db, "email", "new.subject = 'message 2'")

    result = post.sync(box["id"])

    assert result.status == "active"
    assert (result.report.imported, result.report.quarantined) == (3, 1)
    with post.db.read() as session:
        [kept] = session.query(Email).filter(Email.quarantined.is_not(None)).all()
        assert kept.quarantined.startswith("storing failed") and b"message 2" in kept.raw
    heal(db, "email")
    assert post.sync(box["id"]).report.imported == 0  # kept once, not fetched again


def test_broken_message_is_imported_as_data(post: PostOffice) -> None:
    raw = (
        b"From: Odd <odd@customer.test>\r\nTo: someone@else.test\r\n"
        b"Subject: =?x-unknown?B?SGVsbG8=?= caf\xe9\x00\r\n"
        b"Content-Type: text/plain; charset=x-bogus\r\n\r\nbody with \x00 NUL\r\n"
    )
    post.deliver(raw)
    box = post.connect()

    result = post.sync(box["id"])

    assert result.status == "active" and result.report.imported == 1
    [email] = post.emails()
    assert email["message_id"] is None and "\x00" not in email["subject"]
    assert post.sync(box["id"]).report.imported == 0  # keyed by content: never twice


def test_mail_to_an_alias_is_imported_and_linked(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    post.deliver(mail("via alias", to="sales@example.com"))
    box = post.connect()

    post.sync(box["id"])

    [email] = post.emails()
    assert email["contact_ids"] == [ann]
    assert [(n["entity_type"], n["entity_id"]) for n in post.notes()] == [("contact", ann)]


def test_smart_addresses_in_a_synced_message_do_not_act(post: PostOffice) -> None:
    post.deliver(
        mail("cc'd", to="bob@new.test", cc="acme+contact@mail.localhost, acme+lead@mail.localhost")
    )
    box = post.connect()

    post.sync(box["id"])

    with post.db.read() as session:
        from crmmail.services import crm

        assert crm.list_contacts(session, "acme") == []
        assert crm.list_leads(session, "acme") == []
    assert len(post.emails()) == 1


@pytest.mark.parametrize("sent_name", ["Gesendete Objekte", "Sent Items"])
def test_sent_folder_found_by_name(post: PostOffice, sent_name: str) -> None:
    other = f"x{sent_name.replace(' ', '').lower()}-{post.email}"
    post.dovecot.add_user(other, "pw")
    post.dovecot.create_mailbox(other, "Sent-Archive")
    post.dovecot.create_mailbox(other, sent_name)
    post.dovecot.append(other, sent_name, mail("sent one", sender=other))
    post.submission.users[other] = "pw"
    with post.db.transaction() as session:
        from crmmail.services import accounts

        accounts.add_user(
            session, "acme", other, name=None, admin=False, email_access=True, smart_domains=()
        )
    box = post.connect(user_email=other, email=other, password="pw")

    result = post.sync(box["id"])

    assert result.report.folders["sent"] == sent_name
    assert [e["folder"] for e in post.emails(box["id"], as_user=other)] == ["sent"]


def test_sent_folder_override(post: PostOffice) -> None:
    post.dovecot.create_mailbox(post.email, "Outgoing")
    post.deliver(mail("filed in Outgoing", sender=post.email), "Outgoing")
    box = post.connect(sent_folder="Outgoing")

    result = post.sync(box["id"])

    assert result.report.folders["sent"] == "Outgoing"
    assert [e["subject"] for e in post.emails()] == ["filed in Outgoing"]


def test_next_sync_is_jittered_within_the_interval(post: PostOffice) -> None:
    box = post.connect()

    post.sync(box["id"])

    with post.db.read() as session:
        from crmmail.storage.models import Mailbox

        row = session.get(Mailbox, box["id"])
        assert row is not None and row.next_sync_at is not None and row.last_sync_at is not None
        delay = row.next_sync_at - row.last_sync_at
    assert timedelta(minutes=15) <= delay <= timedelta(minutes=30)
