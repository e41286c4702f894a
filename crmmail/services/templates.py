"""Mail templates: save and edit (checked), list, delete, and render for a contact, a lead and
the sending user."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crmmail.errors import AlreadyExists, Hint, NotFound
from crmmail.services.accounts import get_account
from crmmail.services.results import Result
from crmmail.services.validation import checked_email, checked_name
from crmmail.storage.models import Template
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.templates import TemplateRepository
from crmmail.templates.render import Rendered, check_template, render_template

MAX_TEMPLATE_NAME = 200


@dataclass(frozen=True, eq=False)
class TemplateView(Result):
    """A saved template, without its body."""

    id: int
    name: str
    subject: str
    html: bool


@dataclass(frozen=True, eq=False)
class RenderedView(Result):
    """A template filled in: the subject, the text, and the HTML of an HTML template."""

    subject: str
    text: str
    html: str | None


def add_template(
    session: Session, slug: str, name: str, subject: str, body: str, is_html: bool
) -> TemplateView:
    account = get_account(session, slug)
    name = checked_name(name, "template", MAX_TEMPLATE_NAME)
    check_template(subject, body, is_html)
    templates = TemplateRepository(session, account.id)
    if templates.by_name(name) is not None:
        raise AlreadyExists(f"template {name!r} exists already: choose another name")
    template = templates.add(
        Template(account_id=account.id, name=name, subject=subject, body=body, is_html=is_html)
    )
    return describe_template(template)


def edit_template(
    session: Session,
    slug: str,
    name: str,
    *,
    new_name: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    is_html: bool | None = None,
) -> TemplateView:
    """Change what is given (``None``: keep it), checked as ``add_template`` checks."""
    account = get_account(session, slug)
    templates = TemplateRepository(session, account.id)
    template = _template(templates, name)
    if new_name is not None:
        new_name = checked_name(new_name, "template", MAX_TEMPLATE_NAME)
        if new_name != template.name and templates.by_name(new_name) is not None:
            raise AlreadyExists(f"template {new_name!r} exists already: choose another name")
    subject = template.subject if subject is None else subject
    body = template.body if body is None else body
    is_html = template.is_html if is_html is None else is_html
    check_template(subject, body, is_html)
    template.name = template.name if new_name is None else new_name
    template.subject, template.body, template.is_html = subject, body, is_html
    session.flush()
    return describe_template(template)


def delete_template(session: Session, slug: str, name: str) -> TemplateView:
    account = get_account(session, slug)
    templates = TemplateRepository(session, account.id)
    template = _template(templates, name)
    described = describe_template(template)
    templates.delete(template)
    return described


def _template(templates: TemplateRepository, name: str) -> Template:
    template = templates.by_name(name)
    if template is None:
        raise NotFound(f"no template {name!r}", hint=Hint("list_templates"))
    return template


def list_templates(session: Session, slug: str) -> list[TemplateView]:
    account = get_account(session, slug)
    return [describe_template(t) for t in TemplateRepository(session, account.id).list()]


def describe_template(template: Template) -> TemplateView:
    return TemplateView(template.id, template.name, template.subject, template.is_html)


def render_for(
    session: Session,
    account_id: int,
    name: str,
    contact_id: int,
    lead_id: int | None = None,
    as_user: str | None = None,
) -> tuple[Rendered, bool, list[str]]:
    """The template rendered, whether it is HTML, and the contact's addresses."""
    template = _template(TemplateRepository(session, account_id), name)
    crm = CrmRepository(session, account_id)
    found = crm.contact(contact_id)
    if found is None:
        raise NotFound(f"no contact {contact_id}")
    contact, addresses = found
    values: dict[str, dict[str, object] | None] = {
        "contact": {
            "id": contact.id,
            "name": contact.name,
            "first_name": contact.first_name,
            "last_name": _last_name(contact.name, contact.first_name),
            "email": addresses[0] if addresses else None,
        },
        "lead": None,
        "user": None,
    }
    if lead_id is not None:
        lead = crm.lead(lead_id)
        if lead is None:
            raise NotFound(f"no lead {lead_id}")
        values["lead"] = {"id": lead.id, "name": lead.name, "status": lead.status}
    if as_user is not None:
        user = AccountRepository(session).user_by_email(account_id, checked_email(as_user))
        if user is None:
            raise NotFound(f"no user {as_user} in this account")
        values["user"] = {"id": user.id, "name": user.name, "email": user.email}
    rendered = render_template(template.subject, template.body, template.is_html, values)
    return rendered, template.is_html, addresses


def render(
    session: Session,
    slug: str,
    name: str,
    contact_id: int,
    lead_id: int | None = None,
    as_user: str | None = None,
) -> RenderedView:
    account = get_account(session, slug)
    rendered, _, _ = render_for(session, account.id, name, contact_id, lead_id, as_user)
    return RenderedView(rendered.subject, rendered.text, rendered.html)


def _last_name(name: str, first_name: str) -> str:
    """What follows the first name in the full name ('' when it does not start with it).

    >>> _last_name("Ann Lee", "Ann"), _last_name("Lee Ann", "Ann")
    ('Lee', '')
    """
    if first_name and name.startswith(first_name):
        return name[len(first_name) :].strip()
    return ""
