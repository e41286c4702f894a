"""CRM operations: contacts, leads, customers and the notes on their cards."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from crmmail.errors import AlreadyExists, Hint, NotFound, UserInputError
from crmmail.mail.message import NamedAddress
from crmmail.mail.names import person_names
from crmmail.sender_auth.results import summary
from crmmail.services.accounts import get_account, reject_smart_address
from crmmail.services.permissions import Sight, Viewer, sight, viewer_for
from crmmail.services.results import Result, json_name
from crmmail.services.validation import checked_email, checked_name, optional_name
from crmmail.storage.models import LeadStatus
from crmmail.storage.models.account import DmarcPolicy
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.crm import CrmRepository, find_lead
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository
from crmmail.storage.repositories.notes import NoteRepository

MAX_PERSON_NAME = 200
MAX_CARD_NAME = 300


@dataclass(frozen=True, eq=False)
class ContactView(Result):
    id: int
    name: str
    first_name: str
    emails: list[str]


@dataclass(frozen=True, eq=False)
class LeadView(Result):
    id: int
    name: str
    status: str
    contact_ids: list[int]


@dataclass(frozen=True, eq=False)
class CustomerView(Result):
    id: int
    name: str
    contact_ids: list[int]


@dataclass(frozen=True, eq=False)
class NoteAuth(Result):
    """The sender checks of a received message for a CRM view.

    ``tagged`` is true when the message failed DMARC and the account's policy is ``tag``: the
    view should warn that the sender may be forged. ``results`` is our full RFC 8601 value.
    """

    spf: str
    dkim: str
    dmarc: str
    tagged: bool
    dmarc_policy: str | None
    results: str


@dataclass(frozen=True, eq=False)
class NoteView(Result):
    """A note on a card. For a viewer who may not read its email (``insufficient_rights``)
    what the email says (subject, from, message_id, inbound_id, auth) is ``None``."""

    id: int
    entity_type: str
    entity_id: int
    email_id: int | None
    date: datetime | None
    content_removed: bool
    subject: str | None
    from_addr: str | None = field(metadata=json_name("from"))
    message_id: str | None = None
    inbound_id: int | None = None
    auth: NoteAuth | None = None
    insufficient_rights: bool = False


def add_contact(
    session: Session, slug: str, email: str, name: str | None, smart_domains: tuple[str, ...]
) -> ContactView:
    account = get_account(session, slug)
    crm = CrmRepository(session, account.id)
    reject_smart_address(email, smart_domains)
    email = checked_email(email)
    if crm.contacts_by_email([email]):
        raise AlreadyExists(f"{email} is already a contact of {account.slug!r}")
    given = optional_name(name, "contact", MAX_PERSON_NAME) or ""
    full_name, first_name = person_names(NamedAddress(given, email))
    contact = crm.create_contact(full_name, first_name, [email])
    return ContactView(contact.id, contact.name, contact.first_name, [email])


def user_address_warning(session: Session, slug: str, email: str) -> str | None:
    """Why a contact with this address will get no mail, when it is also a user's address.

    Users are never participants (mail with them is about someone else), so their addresses
    never put a note on a card. Both ``contact add`` and ``user add`` still do what they are
    told: the address may rightly be both (a contact who joined the company), and nothing
    offers a way back from either. They say so instead, in one line.
    """
    account = get_account(session, slug)
    email = checked_email(email)
    contact_id = CrmRepository(session, account.id).contacts_by_email([email]).get(email)
    is_user = AccountRepository(session).user_by_email(account.id, email) is not None
    if contact_id is None or not is_user:
        return None
    return (
        f"{email} is both a user and contact {contact_id} of {account.slug!r}: a user's address"
        " is never a participant, so mail with it puts no note on that contact's card"
    )


def list_contacts(session: Session, slug: str) -> list[ContactView]:
    account = get_account(session, slug)
    return [
        ContactView(c.id, c.name, c.first_name, emails)
        for c, emails in CrmRepository(session, account.id).list_contacts()
    ]


def _contact_ids(crm: CrmRepository, emails: list[str]) -> list[int]:
    wanted = list(dict.fromkeys(checked_email(email) for email in emails))
    known = crm.contacts_by_email(wanted)
    missing = [email for email in wanted if email not in known]
    if missing:
        raise UserInputError(f"no contact with address {missing[0]}", hint=Hint("add_contact"))
    return [known[email] for email in wanted]


def add_lead(session: Session, slug: str, name: str, contacts: list[str]) -> LeadView:
    account = get_account(session, slug)
    crm = CrmRepository(session, account.id)
    ids = _contact_ids(crm, contacts)
    lead = crm.create_lead(checked_name(name, "lead", MAX_CARD_NAME), ids)
    return LeadView(lead.id, lead.name, lead.status, ids)


def list_leads(session: Session, slug: str) -> list[LeadView]:
    account = get_account(session, slug)
    return [
        LeadView(lead.id, lead.name, lead.status, ids)
        for lead, ids in CrmRepository(session, account.id).list_leads()
    ]


def set_lead_status(session: Session, lead_id: int, status: str) -> LeadView:
    """Open, won or lost: only open leads get the notes of mail with their contacts."""
    try:
        wanted = LeadStatus(status.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in LeadStatus)
        raise UserInputError(f"unknown lead status {status!r}: use one of {choices}") from None
    lead = find_lead(session, lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}", hint=Hint("list_leads"))
    lead.status = wanted.value
    session.flush()
    ids = CrmRepository(session, lead.account_id).lead_contact_ids(lead.id)
    return LeadView(lead.id, lead.name, lead.status, ids)


def add_customer(session: Session, slug: str, name: str, contacts: list[str]) -> CustomerView:
    account = get_account(session, slug)
    crm = CrmRepository(session, account.id)
    ids = _contact_ids(crm, contacts)
    customer = crm.create_customer(checked_name(name, "customer", MAX_CARD_NAME), ids)
    return CustomerView(customer.id, customer.name, ids)


def list_customers(session: Session, slug: str) -> list[CustomerView]:
    account = get_account(session, slug)
    return [
        CustomerView(customer.id, customer.name, ids)
        for customer, ids in CrmRepository(session, account.id).list_customers()
    ]


def list_notes(session: Session, slug: str, as_user: str | None = None) -> list[NoteView]:
    """The notes on the account's cards as ``as_user`` may see them.

    Notes made by smart addresses are the account's; a note made by a synced email follows the
    email's box: hidden from those who may not read it, and for users without email access on
    a shared box reduced to the fact that an email exists ("insufficient rights").
    """
    viewer = viewer_for(session, slug, as_user)
    sights = _email_sights(session, viewer)
    notes = NoteRepository(session)
    listed: list[NoteView] = []
    found = notes.list_for_account(viewer.account_id)
    verdicts = notes.authentication_of(n.inbound_id for n in found if n.inbound_id is not None)
    for note in found:
        seen = Sight.FULL if note.email_id is None else sights.get(note.email_id, Sight.HIDDEN)
        if seen is Sight.HIDDEN:
            continue
        card = (note.id, note.entity_type, note.entity_id, note.email_id, note.date)
        if seen is Sight.EXISTS:  # the same fields, without what the email says
            listed.append(
                NoteView(*card, note.content_removed, None, None, insufficient_rights=True)
            )
            continue
        listed.append(
            NoteView(
                *card,
                note.content_removed,
                subject=note.subject,
                from_addr=note.from_addr,
                message_id=note.message_id,
                inbound_id=note.inbound_id,
                auth=_auth(verdicts.get(note.inbound_id) if note.inbound_id else None),
            )
        )
    return listed


def _auth(verdict: tuple[str, str | None] | None) -> NoteAuth | None:
    """The sender checks of a received message; ``None`` when not checked."""
    if verdict is None:
        return None
    results, disposition = verdict
    methods = summary(results)
    return NoteAuth(
        spf=methods["spf"],
        dkim=methods["dkim"],
        dmarc=methods["dmarc"],
        tagged=disposition == DmarcPolicy.TAG,
        dmarc_policy=disposition,
        results=results,
    )


def _email_sights(session: Session, viewer: Viewer) -> dict[int, Sight]:
    """How much ``viewer`` sees of each listed (not deleted) email of the account."""
    boxes = {
        box.id: sight(viewer, box)
        for box, _ in MailboxRepository(session).list_for_account(viewer.account_id)
    }
    return {
        email.id: boxes.get(email.mailbox_id, Sight.HIDDEN)
        for email in EmailRepository(session).list_for_account(viewer.account_id)
    }
