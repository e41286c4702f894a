"""``crmmail email``: send through a connected box; list, show, delete and restore emails."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import click

from crmmail.cli.core import (
    Context,
    as_option,
    cli,
    emit,
    json_option,
    pass_context,
    read_body,
)
from crmmail.errors import UserInputError
from crmmail.services import deleted, emails, mail_views
from crmmail.services.mail_views import EmailView, ShownEmail
from crmmail.storage.base import utcnow


@cli.group("email")
def email_group() -> None:
    """Emails of connected mailboxes."""


@email_group.command("send")
@click.option("--mailbox", "mailbox_id", type=int, required=True)
@click.option("--as", "as_user", required=True, metavar="USER_EMAIL", help="Who is sending.")
@click.option("--to", "to", metavar="ADDR[,ADDR]", help="Default with --contact: the contact.")
@click.option("--cc", "cc", metavar="ADDR[,ADDR]")
@click.option("--subject")
@click.option("--body")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "is_html", is_flag=True, help="The body is HTML.")
@click.option("--template", "template_name", metavar="NAME", help="Subject and body from it.")
@click.option("--contact", "contact_id", type=int, help="The contact a template speaks to.")
@click.option("--lead", "lead_id", type=int, help="The lead a template speaks of.")
@json_option
@pass_context
def email_send(
    ctx: Context,
    mailbox_id: int,
    as_user: str,
    to: str | None,
    cc: str | None,
    subject: str | None,
    body: str | None,
    body_file: Path | None,
    is_html: bool,
    template_name: str | None,
    contact_id: int | None,
    lead_id: int | None,
    as_json: bool,
) -> None:
    """Send an email through a connected mailbox; it is linked to the recipients' cards."""
    base = emails.SendRequest(
        mailbox_id=mailbox_id, as_user=as_user, to=[to] if to else [], cc=[cc] if cc else []
    )
    if template_name is not None:
        if contact_id is None:
            raise UserInputError("--template needs --contact ID (and --lead ID for lead fields)")
        if subject is not None or body is not None or body_file is not None or is_html:
            raise UserInputError(
                "with --template, leave out --subject, --body, --body-file, --html"
            )
        choice = emails.TemplateChoice(template_name, contact_id, lead_id)
        request = dataclasses.replace(base, template=choice)
    else:
        if subject is None or to is None:
            raise UserInputError("give --to and --subject (or --template NAME --contact ID)")
        request = dataclasses.replace(
            base, subject=subject, body=read_body(body, body_file), is_html=is_html
        )
    data = emails.send_email(ctx.database(), ctx.settings, request)
    emit(data, as_json, lambda d: f"sent: email {d.id}, {d.message_id}")


def email_rows(data: Sequence[EmailView]) -> str:
    """Emails one per line: id, folder, date and subject."""
    return "\n".join(f"{r.id:>6}  {r.folder:5} {_date(r) or '':25} {r.subject}" for r in data)


def _date(email: EmailView) -> str | None:
    return email.date.isoformat() if email.date is not None else None


@email_group.command("list")
@click.argument("slug")
@as_option
@click.option("--mailbox", "mailbox_id", type=int)
@json_option
@pass_context
def email_list(
    ctx: Context, slug: str, as_user: str, mailbox_id: int | None, as_json: bool
) -> None:
    """List the emails the user may read, newest first."""
    rows = ctx.run(lambda s: mail_views.list_emails(s, slug, as_user, mailbox_id))
    emit(rows, as_json, email_rows)


@email_group.command("show")
@click.argument("email_id", type=int)
@as_option
@json_option
@pass_context
def email_show(ctx: Context, email_id: int, as_user: str, as_json: bool) -> None:
    """Show one email with its text and attachments."""
    data = ctx.run(lambda s: mail_views.show_email(s, email_id, as_user))
    emit(data, as_json, _email_text)


def _email_text(email: ShownEmail) -> str:
    """An email as ``email show`` prints it: its header lines, its attachments, its text."""
    lines = [email.subject, f"From: {email.from_addr}", f"To: {email.to}"]
    if email.cc:
        lines.append(f"Cc: {email.cc}")
    lines.append(f"Date: {_date(email) or '(none)'}")
    lines += [
        f"Attachment {a.id}: {a.filename or '(no name)'} ({a.content_type}, {a.size} bytes)"
        for a in email.attachments
    ]
    return "\n".join(lines) + "\n\n" + email.text.rstrip("\r\n")


@email_group.command("delete")
@click.argument("email_id", type=int)
@as_option
@json_option
@pass_context
def email_delete(ctx: Context, email_id: int, as_user: str, as_json: bool) -> None:
    """Move an email to the CRM's Deleted folder (never deleted on the mail server)."""
    data = ctx.run(lambda s: deleted.delete_email(s, email_id, as_user, utcnow()))
    emit(data, as_json, lambda d: f"email {d.id} moved to the Deleted folder")


@email_group.command("restore")
@click.argument("email_id", type=int)
@as_option
@json_option
@pass_context
def email_restore(ctx: Context, email_id: int, as_user: str, as_json: bool) -> None:
    """Bring an email back from the Deleted folder (admins)."""
    data = ctx.run(lambda s: deleted.restore_email(s, email_id, as_user))
    emit(data, as_json, lambda d: f"email {d.id} restored")
