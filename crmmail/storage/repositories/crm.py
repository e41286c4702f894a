"""Contacts, leads and customers: the cards mail is attached to."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Table, func, insert, literal, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmmail.storage.models import (
    Contact,
    ContactEmail,
    Customer,
    Lead,
    LeadStatus,
    customer_contact,
    lead_contact,
)


def find_lead(session: Session, lead_id: int) -> Lead | None:
    """A lead of any account, by id (commands that name a lead by its id alone)."""
    return session.get(Lead, lead_id)


class CrmRepository:
    """Reads and writes the CRM cards of one account inside the caller's transaction."""

    def __init__(self, session: Session, account_id: int, source_sender: str | None = None) -> None:
        self.session = session
        self.account_id = account_id
        self.source_sender = source_sender  # recorded on the cards it creates (loop guard)

    def created_by_sender(self, sender: str, since: datetime) -> int:
        """How many contacts and leads mail from ``sender`` created since ``since``."""
        counts = [
            select(func.count())
            .select_from(model)
            .where(
                model.account_id == self.account_id,
                model.source_sender == sender.lower(),
                model.created_at >= since,
            )
            .scalar_subquery()
            for model in (Contact, Lead)
        ]
        return int(self.session.scalar(select(counts[0] + counts[1])) or 0)

    # -- contacts ---------------------------------------------------------------------------

    def contacts_by_email(self, emails: Iterable[str]) -> dict[str, int]:
        """Map each given address (lower-cased) that belongs to a contact to that contact's id."""
        wanted = sorted({email.lower() for email in emails})
        if not wanted:
            return {}
        rows = self.session.execute(
            select(ContactEmail.email, ContactEmail.contact_id).where(
                ContactEmail.account_id == self.account_id, ContactEmail.email.in_(wanted)
            )
        )
        return {email: contact_id for email, contact_id in rows}

    def create_contact(self, name: str, first_name: str, emails: Sequence[str]) -> Contact:
        contact = Contact(
            account_id=self.account_id,
            name=name,
            first_name=first_name,
            source_sender=self.source_sender,
        )
        self.session.add(contact)
        self.session.flush()
        for email in dict.fromkeys(address.lower() for address in emails):
            self.session.add(
                ContactEmail(account_id=self.account_id, contact_id=contact.id, email=email)
            )
        self.session.flush()
        return contact

    def create_contact_once(self, email: str, name: str, first_name: str) -> int:
        """Create a contact for an address the caller found unknown; return its id.

        Safe against a concurrent creator: the insert runs in a savepoint, and when another
        transaction created the same address meanwhile, its contact is the answer.
        """
        email = email.lower()
        try:
            with self.session.begin_nested():
                return self.create_contact(name, first_name, [email]).id
        except IntegrityError:
            found = self.contacts_by_email([email]).get(email)
            if found is None:
                raise
            return found

    def contact(self, contact_id: int) -> tuple[Contact, list[str]] | None:
        """One contact of the account with its addresses."""
        contact = self.session.get(Contact, contact_id)
        if contact is None or contact.account_id != self.account_id:
            return None
        emails = self.session.scalars(
            select(ContactEmail.email)
            .where(ContactEmail.contact_id == contact_id)
            .order_by(ContactEmail.id)
        )
        return contact, list(emails)

    def lead(self, lead_id: int) -> Lead | None:
        lead = self.session.get(Lead, lead_id)
        return lead if lead is not None and lead.account_id == self.account_id else None

    def list_contacts(self) -> list[tuple[Contact, list[str]]]:
        contacts = self.session.scalars(
            select(Contact).where(Contact.account_id == self.account_id).order_by(Contact.id)
        ).all()
        emails: dict[int, list[str]] = {}
        for contact_id, email in self.session.execute(
            select(ContactEmail.contact_id, ContactEmail.email)
            .where(ContactEmail.account_id == self.account_id)
            .order_by(ContactEmail.id)
        ):
            emails.setdefault(contact_id, []).append(email)
        return [(contact, emails.get(contact.id, [])) for contact in contacts]

    # -- leads and customers ----------------------------------------------------------------

    def create_lead(self, name: str, contact_ids: Iterable[int]) -> Lead:
        lead = Lead(
            account_id=self.account_id,
            name=name,
            status=LeadStatus.OPEN.value,
            source_sender=self.source_sender,
        )
        self.session.add(lead)
        self.session.flush()
        self._link(lead_contact, "lead_id", lead.id, contact_ids)
        return lead

    def create_customer(self, name: str, contact_ids: Iterable[int]) -> Customer:
        customer = Customer(account_id=self.account_id, name=name)
        self.session.add(customer)
        self.session.flush()
        self._link(customer_contact, "customer_id", customer.id, contact_ids)
        return customer

    def _link(self, table: Table, key: str, owner_id: int, contact_ids: Iterable[int]) -> None:
        rows = [{key: owner_id, "contact_id": cid} for cid in dict.fromkeys(contact_ids)]
        if rows:
            self.session.execute(insert(table), rows)

    def linked_cards(self, contact_ids: Iterable[int]) -> tuple[list[int], list[int]]:
        """The open leads and the customers these contacts belong to, in one round trip."""
        ids = sorted(set(contact_ids))
        if not ids:
            return [], []
        leads = (
            select(literal("lead").label("kind"), Lead.id.label("id"))
            .join(lead_contact, lead_contact.c.lead_id == Lead.id)
            .where(
                Lead.account_id == self.account_id,
                Lead.status == LeadStatus.OPEN.value,
                lead_contact.c.contact_id.in_(ids),
            )
        )
        customers = (
            select(literal("customer").label("kind"), Customer.id.label("id"))
            .join(customer_contact, customer_contact.c.customer_id == Customer.id)
            .where(
                Customer.account_id == self.account_id,
                customer_contact.c.contact_id.in_(ids),
            )
        )
        found: dict[str, set[int]] = {"lead": set(), "customer": set()}
        for kind, card_id in self.session.execute(union_all(leads, customers)):
            found[kind].add(card_id)
        return sorted(found["lead"]), sorted(found["customer"])

    def list_leads(self) -> list[tuple[Lead, list[int]]]:
        leads = self.session.scalars(
            select(Lead).where(Lead.account_id == self.account_id).order_by(Lead.id)
        ).all()
        links = self._links(lead_contact, "lead_id", [lead.id for lead in leads])
        return [(lead, links.get(lead.id, [])) for lead in leads]

    def lead_contact_ids(self, lead_id: int) -> list[int]:
        return self._links(lead_contact, "lead_id", [lead_id]).get(lead_id, [])

    def list_customers(self) -> list[tuple[Customer, list[int]]]:
        customers = self.session.scalars(
            select(Customer).where(Customer.account_id == self.account_id).order_by(Customer.id)
        ).all()
        links = self._links(customer_contact, "customer_id", [c.id for c in customers])
        return [(customer, links.get(customer.id, [])) for customer in customers]

    def _links(self, table: Table, key: str, owner_ids: list[int]) -> dict[int, list[int]]:
        links: dict[int, list[int]] = {}
        if not owner_ids:
            return links
        columns = table.c
        for owner_id, contact_id in self.session.execute(
            select(columns[key], columns.contact_id)
            .where(columns[key].in_(owner_ids))
            .order_by(columns.contact_id)
        ):
            links.setdefault(owner_id, []).append(contact_id)
        return links
