"""``crmmail mailbox``: connect a mailbox, list, new password, sync now, settings, disconnect."""

import sys
from collections.abc import Callable
from typing import Any

import click

from crmmail.cli.core import (
    Context,
    as_option,
    cli,
    emit,
    json_option,
    listing_command,
    pass_context,
)
from crmmail.connector import facade as connector
from crmmail.errors import UserInputError
from crmmail.services import mailbox_rules, mailboxes
from crmmail.storage.models import MailboxKind


def sync_text(result: connector.SyncResult) -> str:
    """How one sync ended, in one line."""
    outcome = f"mailbox {result.mailbox_id}: {result.status}"
    if result.error:
        return f"{outcome} ({result.error})"
    report = result.report
    return f"{outcome}, {report.imported} new, {report.expunged} deleted on the server"


@cli.group()
def mailbox() -> None:
    """Connected mailboxes (IMAP in, SMTP out)."""


def _security_option(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(name, type=click.Choice(["ssl", "starttls"]), help="TLS mode.")


@mailbox.command("connect")
@click.argument("slug")
@click.option("--user", "user_email", required=True, help="The user who owns the box.")
@click.option("--email", required=True, help="The mailbox address (also the login).")
@click.option(
    "--password-env", required=True, metavar="VAR", help="Environment variable with the password."
)
@click.option("--shared", is_flag=True, help="A team box (admins only).")
@click.option("--share-with-admin", is_flag=True, help="A personal box the admins may read.")
@click.option("--imap-host")
@click.option("--imap-port", type=click.IntRange(1, 65535))
@_security_option("--imap-security")
@click.option("--smtp-host")
@click.option("--smtp-port", type=click.IntRange(1, 65535))
@_security_option("--smtp-security")
@click.option("--sent-folder", help="The server folder to sync as Sent (default: found).")
@json_option
@pass_context
def mailbox_connect(
    ctx: Context,
    slug: str,
    user_email: str,
    email: str,
    password_env: str,
    shared: bool,
    share_with_admin: bool,
    imap_host: str | None,
    imap_port: int | None,
    imap_security: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_security: str | None,
    sent_folder: str | None,
    as_json: bool,
) -> None:
    """Connect a mailbox: servers found from the address unless given; login checked first."""
    request = mailboxes.ConnectRequest(
        slug=slug,
        user_email=user_email,
        email=email,
        password=mailboxes.password_from_env(password_env),
        shared=shared,
        share_with_admin=share_with_admin,
        imap=mailboxes.HostChoice(imap_host, imap_port, imap_security),
        smtp=mailboxes.HostChoice(smtp_host, smtp_port, smtp_security),
        sent_folder=sent_folder,
    )
    data = mailboxes.connect_mailbox(ctx.database(), ctx.settings, request)
    emit(
        data,
        as_json,
        lambda d: (
            f"mailbox {d.id} connected: {d.email}; the first import runs in the"
            " background (`crmmail serve`, or `crmmail sync --until-idle`)"
        ),
    )


listing_command(
    mailbox,
    "List an account's mailboxes and how their sync stands.",
    mailboxes.list_mailboxes,
    lambda r: (
        f"{r.id:>6}  {r.email}  {r.kind}  {r.owner}  {r.status}"
        + (f"  ({r.last_error})" if r.last_error else "")
    ),
)


@mailbox.command("password")
@click.argument("mailbox_id", type=int)
@click.option("--password-env", required=True, metavar="VAR")
@json_option
@pass_context
def mailbox_password(ctx: Context, mailbox_id: int, password_env: str, as_json: bool) -> None:
    """Replace a box's password (checked by logging in); a stopped box syncs again."""
    password = mailboxes.password_from_env(password_env)
    data = mailboxes.change_password(ctx.database(), ctx.settings, mailbox_id, password)
    emit(data, as_json, lambda d: f"mailbox {d.id}: password updated, status {d.status}")


@mailbox.command("sync")
@click.argument("mailbox_id", type=int)
@json_option
@pass_context
def mailbox_sync(ctx: Context, mailbox_id: int, as_json: bool) -> None:
    """Sync one mailbox now."""
    result = connector.sync_mailbox(ctx.database(), ctx.settings, mailbox_id)
    emit(result.as_dict(), as_json, lambda d: sync_text(result))
    if result.error:
        sys.exit(1)


@mailbox.command("set")
@click.argument("mailbox_id", type=int)
@as_option
@click.option("--threads", type=click.Choice(["on", "off"]), help="Group messages into threads.")
@click.option("--shared/--personal", "shared", default=None, help="Change the box's type.")
@click.option("--share-with-admin", type=click.Choice(["on", "off"]), help="Personal boxes.")
@json_option
@pass_context
def mailbox_set(
    ctx: Context,
    mailbox_id: int,
    as_user: str,
    threads: str | None,
    shared: bool | None,
    share_with_admin: str | None,
    as_json: bool,
) -> None:
    """Change a mailbox's settings."""
    kind = None if shared is None else (MailboxKind.SHARED if shared else MailboxKind.PERSONAL)
    data = ctx.run(
        lambda s: mailbox_rules.set_mailbox(
            s,
            mailbox_id,
            as_user,
            threads=None if threads is None else threads == "on",
            kind=kind,
            share_with_admin=None if share_with_admin is None else share_with_admin == "on",
        )
    )
    emit(
        data,
        as_json,
        lambda d: f"mailbox {d.id}: {d.kind}, threads {'on' if d.threads else 'off'}",
    )


@mailbox.command("disconnect")
@click.argument("mailbox_id", type=int)
@as_option
@click.option("--delete-emails", "delete_emails", flag_value=True, default=None)
@click.option("--keep-emails", "delete_emails", flag_value=False)
@json_option
@pass_context
def mailbox_disconnect(
    ctx: Context, mailbox_id: int, as_user: str, delete_emails: bool | None, as_json: bool
) -> None:
    """Stop syncing and forget the password; delete the box's emails or keep them."""
    if delete_emails is None:
        raise UserInputError("say what happens to the emails: --delete-emails or --keep-emails")
    data = mailbox_rules.disconnect_mailbox(
        ctx.database(), ctx.settings, mailbox_id, as_user, delete_emails=delete_emails
    )
    emit(data, as_json, lambda d: f"mailbox {d.id} disconnected")
