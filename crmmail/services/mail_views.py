"""What a user may see of the mailboxes' email: listings, one email, threads, the Deleted folder.

Every function takes the acting user (``as_user``) and applies ``permissions``: emails of boxes
the user may not read are left out, emails in the Deleted folder are left out everywhere but
in the Deleted listing, which only admins may open.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from crmmail.errors import Hint, NotFound
from crmmail.mail.message import parse_message
from crmmail.services.permissions import (
    PermissionDenied,
    Sight,
    Viewer,
    require_admin,
    sight,
    viewer_for,
    viewer_in,
)
from crmmail.services.results import Result, json_name
from crmmail.storage.models import Email, Mailbox
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository
from crmmail.storage.repositories.threads import ThreadRepository

INSUFFICIENT_RIGHTS = "insufficient rights"


@dataclass(frozen=True, eq=False)
class EmailView(Result):
    """An email of a connected mailbox, as listings show it."""

    id: int
    mailbox_id: int
    folder: str
    subject: str
    from_addr: str = field(metadata=json_name("from"))
    to: str
    date: datetime | None
    message_id: str | None
    contact_ids: list[int]
    deleted_on_server: bool


@dataclass(frozen=True, eq=False)
class DeletedEmailView(EmailView):
    """An email in the Deleted folder, with when it was deleted."""

    deleted_at: datetime | None


@dataclass(frozen=True, eq=False)
class AttachmentView(Result):
    """An attachment listed with its email (its bytes stay on the mail server)."""

    id: int
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True, eq=False)
class ShownEmail(EmailView):
    """One email with its bodies and attachments."""

    cc: str
    text: str
    html: str | None
    thread_id: int | None
    deleted: bool
    attachments: list[AttachmentView]


@dataclass(frozen=True, eq=False)
class ThreadView(Result):
    """A thread: its emails (``message_ids``: their ids) and the date of the latest."""

    id: int
    mailbox_id: int
    counterpart: str
    subject: str
    message_ids: list[int]
    last_date: datetime | None


def readable_boxes(session: Session, viewer: Viewer) -> dict[int, Mailbox]:
    """The account's boxes whose emails ``viewer`` may read."""
    boxes = MailboxRepository(session).list_for_account(viewer.account_id)
    return {box.id: box for box, _ in boxes if sight(viewer, box) is Sight.FULL}


EmailFields = tuple[int, int, str, str, str, str, datetime | None, str | None, list[int], bool]


def email_fields(email: Email, contact_ids: list[int]) -> EmailFields:
    """The fields of ``EmailView`` (the first ones of the views that extend it), in order."""
    return (
        email.id,
        email.mailbox_id,
        email.folder,
        email.subject,
        email.from_addr,
        email.to_addrs,
        email.date,
        email.message_id,
        contact_ids,
        email.deleted_on_server,
    )


def describe_email(email: Email, contact_ids: list[int]) -> EmailView:
    return EmailView(*email_fields(email, contact_ids))


def list_emails(
    session: Session, slug: str, as_user: str | None, mailbox_id: int | None = None
) -> list[EmailView]:
    viewer = viewer_for(session, slug, as_user)
    readable = readable_boxes(session, viewer)
    _check_chosen_box(session, viewer, readable, mailbox_id, slug)
    emails = EmailRepository(session)
    rows = [
        row
        for row in emails.list_for_account(viewer.account_id, mailbox_id)
        if row.mailbox_id in readable
    ]
    links = emails.contact_ids([row.id for row in rows])
    return [describe_email(row, links[row.id]) for row in rows]


def _check_chosen_box(
    session: Session,
    viewer: Viewer,
    readable: dict[int, Mailbox],
    mailbox_id: int | None,
    slug: str,
) -> None:
    """A listing narrowed to one box (``--mailbox ID``) names a box the viewer may read.

    Boxes of other accounts do not exist here; the account's own are listed to anyone
    (the mailbox listing), so one the viewer may not read is said to be so.
    """
    if mailbox_id is None or mailbox_id in readable:
        return
    box = MailboxRepository(session).get(mailbox_id)
    if box is None or box.account_id != viewer.account_id:
        raise NotFound(
            f"no mailbox {mailbox_id} in account {slug}",
            hint=Hint("list_mailboxes", {"slug": slug}),
        )
    raise PermissionDenied(f"mailbox {mailbox_id}: {INSUFFICIENT_RIGHTS} to read its emails")


def readable_email(session: Session, email: Email | None, as_user: str, what: str) -> Mailbox:
    """The box of an email ``as_user`` may read; ``NotFound`` or "insufficient rights" if not.

    ``what`` names the thing asked for in the errors ("email 5", "attachment 3"); a hidden or
    (for non-admins) deleted email is "not found", so its existence is not revealed.
    """
    if email is None or email.purged:
        raise NotFound(f"no {what}")
    viewer = viewer_in(session, email.account_id, as_user)
    box = MailboxRepository(session).get(email.mailbox_id)
    seen = Sight.HIDDEN if box is None else sight(viewer, box)
    if seen is Sight.HIDDEN or (email.deleted_at is not None and not viewer.is_admin):
        raise NotFound(f"no {what}")
    if seen is Sight.EXISTS:
        raise PermissionDenied(f"{what}: {INSUFFICIENT_RIGHTS} to read it")
    assert box is not None
    return box


def show_email(session: Session, email_id: int, as_user: str) -> ShownEmail:
    """One email with its bodies and attachments, if the user may read it."""
    emails = EmailRepository(session)
    email = emails.get(email_id)
    readable_email(session, email, as_user, f"email {email_id}")
    assert email is not None
    message = parse_message(email.raw)
    return ShownEmail(
        *email_fields(email, emails.contact_ids([email.id])[email.id]),
        cc=email.cc_addrs,
        text=message.text,
        html=message.html,
        thread_id=email.thread_id,
        deleted=email.deleted_at is not None,
        attachments=[
            AttachmentView(a.id, a.filename, a.content_type, a.size)
            for a in emails.attachments(email.id)
        ],
    )


def list_threads(
    session: Session, slug: str, as_user: str | None, mailbox_id: int | None = None
) -> list[ThreadView]:
    viewer = viewer_for(session, slug, as_user)
    readable = readable_boxes(session, viewer)
    _check_chosen_box(session, viewer, readable, mailbox_id, slug)
    box_ids = [box_id for box_id in readable if mailbox_id in (None, box_id)]
    threads = ThreadRepository(session).of_mailboxes(box_ids)
    members = EmailRepository(session).in_thread([thread.id for thread in threads])
    listed: list[ThreadView] = []
    for thread in threads:
        emails = members[thread.id]
        if not emails:
            continue
        dates = [email.date for email in emails if email.date is not None]
        listed.append(
            ThreadView(
                thread.id,
                thread.mailbox_id,
                thread.counterpart,
                thread.subject,
                [email.id for email in emails],
                max(dates) if dates else None,
            )
        )
    listed.sort(key=lambda thread: _iso(thread.last_date) or "", reverse=True)
    return listed


def list_deleted(session: Session, slug: str, as_user: str) -> list[DeletedEmailView]:
    """The Deleted folder: admins only, and of it what they may read."""
    viewer = viewer_for(session, slug, as_user)
    require_admin(viewer, "see the Deleted folder")
    readable = readable_boxes(session, viewer)
    emails = EmailRepository(session)
    rows = [
        row
        for row in emails.list_for_account(viewer.account_id, deleted=True)
        if row.mailbox_id in readable
    ]
    links = emails.contact_ids([row.id for row in rows])
    return [
        DeletedEmailView(*email_fields(row, links[row.id]), deleted_at=row.deleted_at)
        for row in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
