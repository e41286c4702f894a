"""Account operations: create, rename (old slugs stay reserved), list, show, settings, users."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmmail.errors import AlreadyExists, Hint, NotFound, UserInputError
from crmmail.routing.address import Action, format_address, is_our_domain
from crmmail.services.results import Result
from crmmail.services.validation import (
    checked_email,
    checked_name,
    checked_slug,
    optional_name,
)
from crmmail.storage.models import Account, User, UserRole
from crmmail.storage.models.account import DmarcPolicy
from crmmail.storage.repositories.accounts import AccountRepository

MAX_NAME = 200

# Told the slugs whose account changed, once the transaction has committed: a cache of slug ->
# account (the SMTP intake's, crmmail.smtpd.account_ids) forgets them at once.
SlugsChanged = Callable[[str, str], None]


@dataclass(frozen=True, eq=False)
class AccountView(Result):
    """An account as the faces show it: its slug, name, DMARC policy and smart addresses."""

    slug: str
    name: str
    dmarc_policy: str
    smart_addresses: dict[str, str]  # action (note, contact, lead) -> address


@dataclass(frozen=True, eq=False)
class UserView(Result):
    """A user of an account."""

    id: int
    email: str
    name: str
    role: str
    email_access: bool


def get_account(session: Session, slug: str) -> Account:
    account = AccountRepository(session).by_slug(slug)
    if account is None:
        raise NotFound(f"no account {slug!r}", hint=Hint("create_account", {"slug": slug}))
    return account


def create_account(
    session: Session, slug: str, name: str | None, slugs_changed: SlugsChanged | None = None
) -> Account:
    repo = AccountRepository(session)
    slug = checked_slug(slug)
    _require_free(repo, slug, None)
    try:
        account = repo.create(slug, optional_name(name, "account", MAX_NAME) or slug)
    except IntegrityError:
        raise _taken_meanwhile(slug) from None
    _after_commit(session, slugs_changed, slug, slug)
    return account


def rename_account(
    session: Session, slug: str, new_slug: str, slugs_changed: SlugsChanged | None = None
) -> Account:
    """Change the slug, and so every smart address of the account, at once.

    The old slug stays the account's (reserved): no other account may take it, and this one
    may rename back to it.
    """
    account = get_account(session, slug)
    repo = AccountRepository(session)
    new_slug = checked_slug(new_slug)
    _require_free(repo, new_slug, account)
    old_slug = account.slug
    account.slug = new_slug
    try:
        session.flush()
        repo.reserve_slug(account.id, new_slug)
    except IntegrityError:
        raise _taken_meanwhile(new_slug) from None
    _after_commit(session, slugs_changed, old_slug, new_slug)
    return account


def _require_free(repo: AccountRepository, slug: str, taker: Account | None) -> None:
    """Refuse a slug that another account than ``taker`` uses now or used before a rename."""
    holder_id = repo.slug_holder(slug)
    if holder_id is None or (taker is not None and holder_id == taker.id):
        return
    holder = repo.by_id(holder_id)
    if holder is None or holder.slug == slug:
        raise AlreadyExists(f"account {slug!r} exists already: choose another slug")
    raise AlreadyExists(
        f"slug {slug!r} is reserved: account {holder.slug!r} had it before a rename, and mail"
        " still sent to its old addresses must never reach another account; choose another slug"
    )


def _taken_meanwhile(slug: str) -> AlreadyExists:
    return AlreadyExists(f"slug {slug!r} was taken by another account meanwhile: choose another")


def _after_commit(
    session: Session, slugs_changed: SlugsChanged | None, old_slug: str, new_slug: str
) -> None:
    """Tell ``slugs_changed`` once the caller's transaction has committed (not if it rolls back)."""
    if slugs_changed is not None:
        event.listen(
            session, "after_commit", lambda _session: slugs_changed(old_slug, new_slug), once=True
        )


def list_accounts(session: Session) -> list[Account]:
    return AccountRepository(session).all()


def set_account_name(session: Session, slug: str, name: str) -> Account:
    """Change the account's display name (its slug and addresses stay)."""
    account = get_account(session, slug)
    if not name.split():
        raise UserInputError("an account needs a name", hint=Hint("give_account_name"))
    account.name = checked_name(name, "account", MAX_NAME)
    session.flush()
    return account


def set_dmarc_policy(session: Session, slug: str, policy: str) -> Account:
    """Choose what the account does with mail that fails DMARC: accept, tag or quarantine."""
    account = get_account(session, slug)
    try:
        account.dmarc_policy = DmarcPolicy(policy.strip().lower()).value
    except ValueError:
        choices = ", ".join(p.value for p in DmarcPolicy)
        raise UserInputError(f"unknown DMARC policy {policy!r}: use one of {choices}") from None
    session.flush()
    return account


def describe_account(account: Account, smart_domains: tuple[str, ...]) -> AccountView:
    domain = smart_domains[0]
    return AccountView(
        slug=account.slug,
        name=account.name,
        dmarc_policy=account.dmarc_policy,
        smart_addresses={
            action.value: format_address(account.slug, action, domain) for action in Action
        },
    )


def show_account(session: Session, slug: str, smart_domains: tuple[str, ...]) -> AccountView:
    return describe_account(get_account(session, slug), smart_domains)


def list_account_views(session: Session, smart_domains: tuple[str, ...]) -> list[AccountView]:
    return [describe_account(account, smart_domains) for account in list_accounts(session)]


def add_user(
    session: Session,
    slug: str,
    email: str,
    *,
    name: str | None,
    admin: bool,
    email_access: bool,
    smart_domains: tuple[str, ...],
) -> UserView:
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


def list_users(session: Session, slug: str) -> list[UserView]:
    account = get_account(session, slug)
    return [_describe_user(user) for user in AccountRepository(session).users(account.id)]


def _describe_user(user: User) -> UserView:
    return UserView(user.id, user.email, user.name, user.role, user.email_access)


def reject_smart_address(email: str, smart_domains: tuple[str, ...]) -> None:
    """Our own domains hold only system addresses: no contact or user may live there."""
    if is_our_domain(email, smart_domains):
        raise UserInputError(f"{email} is on a smart-address domain: use a real address")
