"""Accounts, the slugs they hold, and their users."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmmail.storage.models import Account, ReservedSlug, User, UserRole


class AccountRepository:
    """Reads and writes accounts and users inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_slug(self, slug: str) -> Account | None:
        return self.session.scalars(select(Account).where(Account.slug == slug.lower())).first()

    def by_id(self, account_id: int) -> Account | None:
        return self.session.get(Account, account_id)

    def id_for_slug(self, slug: str) -> int | None:
        """The id of the account with that slug (the RCPT-time lookup: one indexed read)."""
        return self.session.scalar(select(Account.id).where(Account.slug == slug.lower()))

    def dmarc_policy(self, account_id: int) -> str | None:
        """What the account does with mail that fails DMARC (``None``: no such account)."""
        return self.session.scalar(select(Account.dmarc_policy).where(Account.id == account_id))

    def all(self) -> list[Account]:
        return list(self.session.scalars(select(Account).order_by(Account.slug)))

    def create(self, slug: str, name: str) -> Account:
        account = Account(slug=slug, name=name)
        self.session.add(account)
        self.session.flush()
        self.reserve_slug(account.id, slug)
        return account

    def slug_holder(self, slug: str) -> int | None:
        """The id of the account that uses or used ``slug`` (``None``: never used)."""
        return self.session.scalar(
            select(ReservedSlug.account_id).where(ReservedSlug.slug == slug.lower())
        )

    def reserve_slug(self, account_id: int, slug: str) -> None:
        """Keep ``slug`` for the account for good (nothing to do if it holds it already).

        The slug is the table's primary key: a concurrent transaction reserving it for another
        account fails with ``IntegrityError`` at this flush or at its commit.
        """
        if self.slug_holder(slug) != account_id:
            self.session.add(ReservedSlug(slug=slug.lower(), account_id=account_id))
            self.session.flush()

    def add_user(
        self, account: Account, email: str, name: str, role: UserRole, email_access: bool
    ) -> User:
        user = User(
            account_id=account.id,
            email=email.lower(),
            name=name,
            role=role.value,
            email_access=email_access,
        )
        self.session.add(user)
        self.session.flush()
        return user

    def user(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def user_by_email(self, account_id: int, email: str) -> User | None:
        return self.session.scalars(
            select(User).where(User.account_id == account_id, User.email == email.lower())
        ).first()

    def users(self, account_id: int) -> list[User]:
        return list(
            self.session.scalars(
                select(User).where(User.account_id == account_id).order_by(User.id)
            )
        )

    def user_emails(self, account_id: int) -> set[str]:
        """Every user address of the account, lower-cased."""
        return set(
            self.session.scalars(
                select(func.lower(User.email)).where(User.account_id == account_id)
            )
        )
