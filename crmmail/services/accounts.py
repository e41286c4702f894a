"""Account operations: create, rename, show (with smart addresses), DMARC policy, add users."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from crmmail.errors import AlreadyExists, NotFound, UserInputError
from crmmail.routing.address import Action, format_address, is_our_domain
from crmmail.services.validation import checked_email, checked_slug, optional_name
from crmmail.storage.models import Account, User, UserRole
from crmmail.storage.models.account import DmarcPolicy
from crmmail.storage.repositories.accounts import AccountRepository

MAX_NAME = 200

# Told the slugs whose account changed, once the transaction has committed: a cache of slug ->
# account (the SMTP intake's, crmmail.smtpd.account_ids) forgets them at once.
SlugsChanged = Callable[[str, str], None]


def get_account(session: Session, slug: str) -> Account:
    account = AccountRepository(session).by_slug(slug)
    if account is None:
        raise NotFound(f"no account {slug!r}: create it with `crmmail account create {slug}`")
    return account


def create_account(
    session: Session, slug: str, name: str | None, slugs_changed: SlugsChanged | None = None
) -> Account:
    repo = AccountRepository(session)
    slug = checked_slug(slug)
    if repo.by_slug(slug) is not None:
        raise AlreadyExists(f"account {slug!r} exists already: choose another slug")
    account = repo.create(slug, optional_name(name, "account", MAX_NAME) or slug)
    _after_commit(session, slugs_changed, slug, slug)
    return account


def rename_account(
    session: Session, slug: str, new_slug: str, slugs_changed: SlugsChanged | None = None
) -> Account:
    """Change the slug, and so every smart address of the account, at once."""
    account = get_account(session, slug)
    new_slug = checked_slug(new_slug)
    if new_slug != account.slug and AccountRepository(session).by_slug(new_slug) is not None:
        raise AlreadyExists(f"account {new_slug!r} exists already: choose another slug")
    old_slug = account.slug
    account.slug = new_slug
    session.flush()
    _after_commit(session, slugs_changed, old_slug, new_slug)
    return account


def _after_commit(
    session: Session, slugs_changed: SlugsChanged | None, old_slug: str, new_slug: str
) -> None:
    """Tell ``slugs_changed`` once the caller's transaction has committed (not if it rolls back)."""
    if slugs_changed is not None:
        event.listen(
            session, "after_commit", lambda _session: slugs_changed(old_slug, new_slug), once=True
        )


def set_dmarc_policy(session: Session, slug: str, policy: str) -> dict[str, Any]:
    """Choose what the account does with mail that fails DMARC: accept, tag or quarantine."""
    account = get_account(session, slug)
    try:
        account.dmarc_policy = DmarcPolicy(policy.strip().lower()).value
    except ValueError:
        choices = ", ".join(p.value for p in DmarcPolicy)
        raise UserInputError(f"unknown DMARC policy {policy!r}: use one of {choices}") from None
    session.flush()
    return {"slug": account.slug, "dmarc_policy": account.dmarc_policy}


def describe_account(account: Account, smart_domains: tuple[str, ...]) -> dict[str, Any]:
    domain = smart_domains[0]
    return {
        "slug": account.slug,
        "name": account.name,
        "smart_addresses": {
            action.value: format_address(account.slug, action, domain) for action in Action
        },
    }


def add_user(
    session: Session,
    slug: str,
    email: str,
    *,
    name: str | None,
    admin: bool,
    email_access: bool,
    smart_domains: tuple[str, ...],
) -> dict[str, Any]:
    account = get_account(session, slug)
    repo = AccountRepository(session)
    reject_smart_address(email, smart_domains)
    email = checked_email(email)
    if repo.user_by_email(account.id, email) is not None:
        raise AlreadyExists(f"{email} is already a user of {account.slug!r}")
    user = repo.add_user(
        account,
        email,
        optional_name(name, "user", MAX_NAME) or email.partition("@")[0],
        UserRole.ADMIN if admin else UserRole.MEMBER,
        email_access,
    )
    return _describe_user(user)


def list_users(session: Session, slug: str) -> list[dict[str, Any]]:
    account = get_account(session, slug)
    return [_describe_user(user) for user in AccountRepository(session).users(account.id)]


def _describe_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "email_access": user.email_access,
    }


def reject_smart_address(email: str, smart_domains: tuple[str, ...]) -> None:
    """Our own domains hold only system addresses: no contact or user may live there."""
    if is_our_domain(email, smart_domains):
        raise UserInputError(f"{email} is on a smart-address domain: use a real address")
