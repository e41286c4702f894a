"""Who sees a mailbox's emails: the CRM's rules for personal and shared boxes, in one place.

| box | who sees the content |
|---|---|
| personal | its owner; the account's admins too when the owner shares it with them |
| shared | admins and every user with email access; users without email access see on a
  contact card that an email exists, not what it says ("insufficient rights") |

Listings and actions resolve the acting user to a ``Viewer`` first; without a user (a system
listing) the viewer has no role at all: it sees what anyone may see.
"""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from crmmail.errors import Hint, NotFound, UserInputError
from crmmail.services.accounts import get_account
from crmmail.services.validation import checked_email
from crmmail.storage.models import Mailbox, MailboxKind, UserRole
from crmmail.storage.repositories.accounts import AccountRepository


class PermissionDenied(UserInputError):
    """The acting user may not do this; the message says who may."""


class Sight(StrEnum):
    """How much of an email a viewer gets."""

    FULL = "full"
    EXISTS = "exists"  # that it exists, not what it says
    HIDDEN = "hidden"


@dataclass(frozen=True)
class Viewer:
    """The acting user, as far as the rules care."""

    account_id: int
    user_id: int | None
    is_admin: bool
    email_access: bool


def viewer_for(session: Session, slug: str, as_user: str | None) -> Viewer:
    """The viewer for ``--as USER_EMAIL`` in account ``slug`` (no user: the least one)."""
    return viewer_in(session, get_account(session, slug).id, as_user)


def viewer_in(session: Session, account_id: int, as_user: str | None) -> Viewer:
    if as_user is None:
        return Viewer(account_id, None, is_admin=False, email_access=False)
    user = AccountRepository(session).user_by_email(account_id, checked_email(as_user))
    if user is None:
        raise NotFound(f"no user {as_user} in this account", hint=Hint("add_user"))
    return Viewer(account_id, user.id, user.role == UserRole.ADMIN.value, user.email_access)


def sight(viewer: Viewer, mailbox: Mailbox) -> Sight:
    """What ``viewer`` sees of the emails of ``mailbox``.

    >>> box = Mailbox(kind="personal", owner_id=1, share_with_admin=False)
    >>> admin = Viewer(1, 2, is_admin=True, email_access=True)
    >>> sight(Viewer(1, 1, False, False), box), sight(admin, box)
    (<Sight.FULL: 'full'>, <Sight.HIDDEN: 'hidden'>)
    >>> box.share_with_admin = True
    >>> sight(admin, box)
    <Sight.FULL: 'full'>
    >>> shared = Mailbox(kind="shared", owner_id=2, share_with_admin=False)
    >>> sight(Viewer(1, 3, False, True), shared), sight(Viewer(1, 4, False, False), shared)
    (<Sight.FULL: 'full'>, <Sight.EXISTS: 'exists'>)
    """
    if mailbox.account_id is not None and mailbox.account_id != viewer.account_id:
        return Sight.HIDDEN
    if mailbox.kind == MailboxKind.SHARED.value:
        return Sight.FULL if viewer.is_admin or viewer.email_access else Sight.EXISTS
    if viewer.user_id is not None and viewer.user_id == mailbox.owner_id:
        return Sight.FULL
    if mailbox.share_with_admin and viewer.is_admin:
        return Sight.FULL
    return Sight.HIDDEN


def require_admin(viewer: Viewer, what: str) -> None:
    if not viewer.is_admin:
        raise PermissionDenied(f"only admins {what}")


def may_change(viewer: Viewer, mailbox: Mailbox) -> bool:
    """Who changes a box's settings: a personal box's owner only (sharing it is the owner's
    choice, not an admin's), a shared box's admins."""
    if mailbox.kind == MailboxKind.SHARED.value:
        return viewer.is_admin
    return viewer.user_id is not None and viewer.user_id == mailbox.owner_id


def may_disconnect(viewer: Viewer, mailbox: Mailbox) -> bool:
    """The owner of a personal box, and admins (who keep control of what syncs)."""
    return viewer.is_admin or (
        mailbox.kind == MailboxKind.PERSONAL.value and viewer.user_id == mailbox.owner_id
    )
