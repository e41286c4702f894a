"""The scheduler: jittered and reproducible, backing off, one sync per box, stoppable."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from crmmail.connector.credentials import load_key_ring
from crmmail.connector.scheduler import MailboxBusy, Schedule, SyncScheduler
from crmmail.errors import NotFound, UserInputError
from crmmail.processor.worker import Worker
from crmmail.services import mailboxes
from crmmail.storage.models import Mailbox
from crmmail.storage.repositories.mailboxes import MailboxRepository
from tests.connector.conftest import PostOffice, mail
from tests.intake import running_intake, send

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _box(post: PostOffice, mailbox_id: int) -> Mailbox:
    with post.db.read() as session:
        box = session.get(Mailbox, mailbox_id)
        assert box is not None
        session.expunge(box)
        return box


def _scheduler(post: PostOffice, seed: int, clock: datetime) -> SyncScheduler:
    schedule = Schedule(900, 1800, random.Random(seed))
    keys = load_key_ring(post.settings)
    return SyncScheduler(post.db, post.settings, keys, schedule, lambda: clock)


def test_next_syncs_are_jittered_and_reproducible_with_a_seed(post: PostOffice) -> None:
    box = post.connect()
    expected = [random.Random(42).uniform(900, 1800) for _ in range(1)]

    _scheduler(post, 42, NOON).sync_mailbox(box["id"])

    row = _box(post, box["id"])
    assert row.next_sync_at == NOON + timedelta(seconds=expected[0])
    assert row.last_sync_at == NOON


def test_boxes_do_not_all_poll_at_once(post: PostOffice) -> None:
    schedule = Schedule(900, 1800, random.Random(3))
    times = {schedule.after_success(NOON) for _ in range(20)}
    assert len(times) == 20
    assert all(NOON + timedelta(minutes=15) <= t <= NOON + timedelta(minutes=30) for t in times)


def test_transient_failures_back_off(post: PostOffice) -> None:
    box = post.connect()
    with post.db.transaction() as session:
        row = session.get(Mailbox, box["id"])
        assert row is not None
        row.imap_port = post.submission.port + 1 if post.submission.port < 65535 else 1  # closed

    first = _scheduler(post, 1, NOON).sync_mailbox(box["id"])
    second = _scheduler(post, 1, NOON).sync_mailbox(box["id"])

    assert first.status == second.status == "error"
    row = _box(post, box["id"])
    assert row.failures == 2 and "cannot talk to localhost" in (row.last_error or "")
    assert row.next_sync_at is not None
    assert NOON + timedelta(seconds=96) <= row.next_sync_at <= NOON + timedelta(seconds=144)
    [listed] = post.mailboxes()
    assert listed["status"] == "error" and listed["last_error"]


def test_one_sync_per_box_at_a_time(post: PostOffice) -> None:
    box = post.connect()
    with post.db.transaction() as session:
        claimed = MailboxRepository(session).claim(
            box["id"], datetime.now(UTC), timedelta(minutes=5)
        )
    assert claimed is not None

    with pytest.raises(MailboxBusy):
        post.sync(box["id"])
    assert post.scheduler().run_until_idle() == []


def test_a_stopping_server_leaves_the_import_to_resume(post: PostOffice) -> None:
    settings = post.settings.model_copy(update={"import_batch": 2})
    for n in range(5):
        post.deliver(mail(f"message {n}"))
    box = post.connect()
    scheduler = post.scheduler(settings)
    scheduler.stop = threading.Event()
    scheduler.stop.set()

    interrupted = scheduler.sync_mailbox(box["id"])

    assert interrupted.status == "interrupted"
    assert _box(post, box["id"]).status == "importing"
    [resumed] = post.scheduler(settings).run_until_idle()  # still due
    assert resumed.status == "active" and len(post.emails()) == 5


def test_a_message_both_synced_and_sent_to_the_smart_address_lands_once(
    post: PostOffice,
) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    raw = mail("both ways", to=post.email, cc="acme@mail.localhost")
    with running_intake(post.db, post.settings) as port:
        send(port, raw, ["acme@mail.localhost"], "ann@customer.test")
    Worker(post.db, post.settings).run_until_idle()
    post.deliver(raw)
    box = post.connect()

    post.sync(box["id"])

    assert [(n["entity_type"], n["entity_id"]) for n in post.notes()] == [("contact", ann)]
    [email] = post.emails()
    assert email["contact_ids"] == [ann]


def test_on_demand_sync_refuses_a_box_that_cannot_log_in(post: PostOffice) -> None:
    box = post.connect()
    post.dovecot.set_password(post.email, "rotated")
    assert post.sync(box["id"]).status == "auth_failed"

    with pytest.raises(UserInputError, match="cannot log in: set its password"):
        post.sync(box["id"])
    with pytest.raises(NotFound, match="no mailbox 999"):
        post.sync(999)


def test_a_new_password_waits_for_a_running_sync(post: PostOffice) -> None:
    box = post.connect()
    with post.db.transaction() as session:
        held = MailboxRepository(session).claim(box["id"], datetime.now(UTC), timedelta(minutes=5))
    assert held is not None
    impatient = post.settings.model_copy(update={"mail_timeout": 0.3})
    before = post.dovecot.log_text().count("imap-login:")

    with pytest.raises(UserInputError, match="being synced right now"):
        mailboxes.change_password(post.db, impatient, box["id"], post.password)

    assert post.dovecot.log_text().count("imap-login:") == before  # no second connection
    with post.db.transaction() as session:
        MailboxRepository(session).release(box["id"], held[1])
    changed = mailboxes.change_password(post.db, impatient, box["id"], post.password)
    assert changed["status"] == "importing"
    assert post.sync(box["id"]).status == "active"  # the lease was given back
