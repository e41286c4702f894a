"""Mail templates of an account: add, find by name, list, delete."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmmail.storage.models import Template


class TemplateRepository:
    """Reads and writes templates inside the caller's transaction."""

    def __init__(self, session: Session, account_id: int) -> None:
        self.session = session
        self.account_id = account_id

    def add(self, template: Template) -> Template:
        self.session.add(template)
        self.session.flush()
        return template

    def delete(self, template: Template) -> None:
        self.session.delete(template)
        self.session.flush()

    def by_name(self, name: str) -> Template | None:
        return self.session.scalar(
            select(Template).where(Template.account_id == self.account_id, Template.name == name)
        )

    def list(self) -> list[Template]:
        return list(
            self.session.scalars(
                select(Template)
                .where(Template.account_id == self.account_id)
                .order_by(Template.name)
            )
        )
