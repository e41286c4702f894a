"""The permission matrix: every (role, email access, box type, sharing) against every listing.

The expected sight of each combination is the CRM's rule written out as a table; each listing
is then checked for what that sight means for it.
"""

from typing import Any

import pytest
from sqlalchemy.orm import Session

from crmmail.connector.capture import Destination, Incoming, Placement, capture
from crmmail.errors import NotFound
from crmmail.services import accounts, crm, mail_views
from crmmail.services.permissions import PermissionDenied
from crmmail.storage.database import Database
from crmmail.storage.models import Mailbox
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository
from tests.connector.conftest import mail

VIEWERS = {  # name: (admin, email access)
    "admin": (True, True),
    "admin-no-access": (True, False),
    "member": (False, True),
    "member-no-access": (False, False),
}
BOXES = ("own-personal", "other-personal", "shared")

# (viewer, box, shared with admin) -> what the viewer sees of the box's email
EXPECTED = {
    ("admin", "own-personal", False): "full",
    ("admin", "own-personal", True): "full",
    ("admin", "other-personal", False): "hidden",
    ("admin", "other-personal", True): "full",
    ("admin", "shared", False): "full",
    ("admin", "shared", True): "full",
    ("admin-no-access", "own-personal", False): "full",
    ("admin-no-access", "own-personal", True): "full",
    ("admin-no-access", "other-personal", False): "hidden",
    ("admin-no-access", "other-personal", True): "full",
    ("admin-no-access", "shared", False): "full",
    ("admin-no-access", "shared", True): "full",
    ("member", "own-personal", False): "full",
    ("member", "own-personal", True): "full",
    ("member", "other-personal", False): "hidden",
    ("member", "other-personal", True): "hidden",
    ("member", "shared", False): "full",
    ("member", "shared", True): "full",
    ("member-no-access", "own-personal", False): "full",
    ("member-no-access", "own-personal", True): "full",
    ("member-no-access", "other-personal", False): "hidden",
    ("member-no-access", "other-personal", True): "hidden",
    ("member-no-access", "shared", False): "exists",
    ("member-no-access", "shared", True): "exists",
}
LISTINGS = ("email list", "thread list", "note list", "email show")
CASES = [
    (viewer, box, shared_with_admin, listing)
    for (viewer, box, shared_with_admin) in EXPECTED
    for listing in LISTINGS
]


def _arrange(
    db: Database, viewer: str, box: str, shared_with_admin: bool, smart_domains: tuple[str, ...]
) -> tuple[str, int]:
    """The viewer, one box with one email from a known contact; returns (viewer email, email id)."""
    admin, access = VIEWERS[viewer]
    viewer_email = f"{viewer}@acme.test"
    with db.transaction() as session:
        account = accounts.create_account(session, "acme", None)
        for name, is_admin, has_access in (
            (viewer_email, admin, access),
            ("owner@acme.test", False, True),
            ("boss@acme.test", True, True),
        ):
            accounts.add_user(
                session,
                "acme",
                name,
                name=None,
                admin=is_admin,
                email_access=has_access,
                smart_domains=smart_domains,
            )
        crm.add_contact(session, "acme", "ann@customer.test", "Ann Lee", smart_domains)
        owner = {"own-personal": viewer_email, "other-personal": "owner@acme.test"}.get(
            box, "boss@acme.test"
        )
        mailbox = _mailbox(session, account.id, owner, box, shared_with_admin)
        _, email_id = capture(
            session,
            Destination.load(session, mailbox.id),
            Placement(account.id, mailbox.id, "inbox", 1, 1),
            Incoming.parse(mail("Quote", to=owner)),
            smart_domains,
        )
    return viewer_email, email_id


def _mailbox(
    session: Session, account_id: int, owner: str, box: str, shared_with_admin: bool
) -> Mailbox:
    user = AccountRepository(session).user_by_email(account_id, owner)
    assert user is not None
    return MailboxRepository(session).add(
        Mailbox(
            account_id=account_id,
            owner_id=user.id,
            email=owner,
            username=owner,
            kind="shared" if box == "shared" else "personal",
            share_with_admin=shared_with_admin,
            imap_host="imap.example.com",
            imap_port=993,
            imap_security="ssl",
            smtp_host="smtp.example.com",
            smtp_port=465,
            smtp_security="ssl",
        )
    )


def _outcome(session: Session, listing: str, viewer: str, email_id: int) -> Any:
    if listing == "email list":
        return [e["id"] for e in mail_views.list_emails(session, "acme", viewer)] == [email_id]
    if listing == "thread list":
        threads = mail_views.list_threads(session, "acme", viewer)
        return [t["message_ids"] for t in threads] == [[email_id]]
    if listing == "note list":
        notes = crm.list_notes(session, "acme", viewer)
        return [(n["insufficient_rights"], n.get("subject")) for n in notes]
    try:
        return mail_views.show_email(session, email_id, viewer)["subject"]
    except PermissionDenied:
        return "insufficient rights"
    except NotFound:
        return "not found"


SEEN_AS = {  # listing -> sight -> outcome
    "email list": {"full": True, "exists": False, "hidden": False},
    "thread list": {"full": True, "exists": False, "hidden": False},
    "note list": {"full": [(False, "Quote")], "exists": [(True, None)], "hidden": []},
    "email show": {"full": "Quote", "exists": "insufficient rights", "hidden": "not found"},
}


@pytest.mark.parametrize("viewer, box, shared_with_admin, listing", CASES)
def test_permission_matrix(
    db: Database,
    settings: Any,
    viewer: str,
    box: str,
    shared_with_admin: bool,
    listing: str,
) -> None:
    viewer_email, email_id = _arrange(db, viewer, box, shared_with_admin, settings.smart_domains)
    with db.read() as session:
        outcome = _outcome(session, listing, viewer_email, email_id)
    assert outcome == SEEN_AS[listing][EXPECTED[(viewer, box, shared_with_admin)]]


def test_the_matrix_covers_every_combination() -> None:
    combinations = {(v, b, s) for v in VIEWERS for b in BOXES for s in (False, True)}
    assert set(EXPECTED) == combinations and len(CASES) == 96
