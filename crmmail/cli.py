"""The ``crmmail`` command line; with ``--json`` each command prints one JSON document on stdout.

Settings come from the environment (``CRMMAIL_*``); flags override them. Bad input exits
non-zero with one line on stderr, never a traceback.
"""

import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail import dnscheck
from crmmail.app import serve as serve_forever
from crmmail.config import Settings
from crmmail.connector.credentials import ensure_key_file
from crmmail.connector.scheduler import SyncResult, SyncScheduler
from crmmail.errors import CrmmailError, UserInputError
from crmmail.logs import configure_logging
from crmmail.processor.worker import Worker
from crmmail.services import (
    accounts,
    attachments,
    crm,
    deleted,
    emails,
    inbound,
    mail_views,
    mailbox_rules,
    mailboxes,
    templates,
)
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.migrate import DatabaseReadOnly, check_writable, initialise, is_at_head
from crmmail.storage.models import LeadStatus, MailboxKind

T = TypeVar("T")


class Context:
    """What every command gets: the settings, and the database opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None

    def database(self, *, must_be_initialised: bool = True) -> Database:
        if self._db is None:
            db = Database.from_url(self.settings.database_url)  # checks the URL, connects later
            url = db.engine.url
            missing_file = (
                url.get_backend_name() == "sqlite" and not Path(url.database or "").exists()
            )
            if must_be_initialised and missing_file:
                raise CrmmailError(f"no database at {url.database}: run `crmmail init`")
            if must_be_initialised and not is_at_head(db.engine):
                raise CrmmailError(
                    "the database is not initialised (or is older than this crmmail): "
                    "run `crmmail init`"
                )
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def run(self, operation: Callable[[Session], T]) -> T:
        """Run one operation in one transaction."""
        with self.database().transaction() as session:
            return operation(session)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=None) if as_json else text(data))


def warn(message: str | None) -> None:
    """One line on stderr about something done that may not be what was meant (exit code 0)."""
    if message is not None:
        click.echo(f"crmmail: warning: {message}", err=True)


def _fail(message: str) -> None:
    click.echo(f"crmmail: error: {message}", err=True)
    sys.exit(1)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn our errors and the database's into one line on stderr and exit code 1."""
    try:
        yield
    except CrmmailError as error:
        _fail(str(error))
    except DBAPIError as error:
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        _fail(f"database error: {first_line}")
    except SQLAlchemyError as error:
        _fail(f"database error: {type(error).__name__}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
pass_context = click.make_pass_decorator(Context)


def listing_command(
    group: click.Group,
    help_text: str,
    listing: Callable[[Session, str], list[dict[str, Any]]],
    row_text: Callable[[dict[str, Any]], str],
) -> None:
    """Add ``GROUP list SLUG [--json]``: one line per row, or the rows as one JSON array."""

    @group.command("list", help=help_text)
    @click.argument("slug")
    @json_option
    @pass_context
    def list_command(ctx: Context, slug: str, as_json: bool) -> None:
        rows = ctx.run(lambda s: listing(s, slug))
        emit(rows, as_json, lambda data: "\n".join(row_text(row) for row in data))


def main() -> None:
    """The ``crmmail`` console script: click's usage errors become one line too."""
    try:
        cli.main(prog_name="crmmail", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:  # a bare group: its help, as click does
        error.show()
        sys.exit(error.exit_code)
    except click.ClickException as error:
        where = error.ctx.command_path if isinstance(error, click.UsageError) and error.ctx else ""
        hint = f" (see `{where or 'crmmail'} --help`)"
        click.echo(f"crmmail: error: {error.format_message()}{hint}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("crmmail: aborted", err=True)
        sys.exit(1)


@click.group()
@click.version_option(package_name="crmmail", prog_name="crmmail")
@click.option("--database-url", help="Overrides CRMMAIL_DATABASE_URL.")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, verbose: bool) -> None:
    """crmmail: the email side of a CRM."""
    try:
        settings = Settings()
        if database_url:
            settings = settings.model_copy(update={"database_url": database_url})
    except ValidationError as error:
        problem = error.errors()[0]
        name = "CRMMAIL_" + "_".join(str(part) for part in problem["loc"]).upper()
        _fail(f"invalid setting {name}: {problem['msg']}")
    configure_logging(settings.log_format, logging.INFO if verbose else logging.WARNING)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)
    ctx.with_resource(_clear_errors())


@cli.command()
@json_option
@pass_context
def init(ctx: Context, as_json: bool) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    db = ctx.database(must_be_initialised=False)
    initialise(db.engine)
    url = db.engine.url.render_as_string(hide_password=True)
    try:
        key_file = ensure_key_file(ctx.settings)
    except OSError as error:
        raise CrmmailError(
            f"cannot create the key file for mailbox passwords: {error.strerror} ({error.filename})"
            ": make its directory writable or set CRMMAIL_SECRET_KEY"
        ) from None
    emit(
        {"database_url": url, "at_head": True, "key_file_created": key_file and str(key_file)},
        as_json,
        lambda d: (
            f"database ready: {url}"
            + (f"\nkey for mailbox passwords created: {key_file}" if key_file else "")
        ),
    )


# -- accounts and users ---------------------------------------------------------------------


@cli.group()
def account() -> None:
    """CRM accounts and their smart addresses."""


@account.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@json_option
@pass_context
def account_create(ctx: Context, slug: str, name: str | None, as_json: bool) -> None:
    """Create an account; its smart addresses are SLUG[+contact|+lead]@DOMAIN."""
    domains = ctx.settings.smart_domains
    data = ctx.run(
        lambda s: accounts.describe_account(accounts.create_account(s, slug, name), domains)
    )
    emit(data, as_json, lambda d: f"account {d['slug']} created: {d['smart_addresses']['note']}")


@account.command("rename")
@click.argument("slug")
@click.argument("new_slug")
@json_option
@pass_context
def account_rename(ctx: Context, slug: str, new_slug: str, as_json: bool) -> None:
    """Change an account's slug: its old addresses stop working at once (the old slug stays
    reserved to the account: no other account may take it, this one may take it back)."""
    domains = ctx.settings.smart_domains
    data = ctx.run(
        lambda s: accounts.describe_account(accounts.rename_account(s, slug, new_slug), domains)
    )
    emit(data, as_json, lambda d: f"account {slug} is now {d['slug']}")


DMARC_OUTCOMES = {"accept": "accepted", "tag": "tagged", "quarantine": "quarantined"}


@account.command("list")
@json_option
@pass_context
def account_list(ctx: Context, as_json: bool) -> None:
    """List the accounts, by slug."""
    domains = ctx.settings.smart_domains
    rows = ctx.run(
        lambda s: [accounts.describe_account(a, domains) for a in accounts.list_accounts(s)]
    )
    emit(
        rows,
        as_json,
        lambda data: "\n".join(
            f"{r['slug']}  ({r['name']})  {r['smart_addresses']['note']}" for r in data
        ),
    )


@account.command("show")
@click.argument("slug")
@json_option
@pass_context
def account_show(ctx: Context, slug: str, as_json: bool) -> None:
    """Show an account, its smart addresses and its DMARC policy."""
    domains = ctx.settings.smart_domains
    data = ctx.run(lambda s: accounts.describe_account(accounts.get_account(s, slug), domains))
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            [f"{d['slug']} ({d['name']})"]
            + [f"  {action:8} {address}" for action, address in d["smart_addresses"].items()]
            + [
                f"  DMARC    {d['dmarc_policy']}: mail failing DMARC is "
                f"{DMARC_OUTCOMES[d['dmarc_policy']]}"
            ]
        ),
    )


@account.command("set")
@click.argument("slug")
@click.option("--name", help="A new display name (the slug and the addresses stay).")
@click.option(
    "--dmarc-policy",
    type=click.Choice(list(DMARC_OUTCOMES)),
    help="What mail failing DMARC does: accept, tag (default; shown on its notes) or "
    "quarantine (acts on nothing, kept as ignored: dmarc_fail).",
)
@json_option
@pass_context
def account_set(
    ctx: Context, slug: str, name: str | None, dmarc_policy: str | None, as_json: bool
) -> None:
    """Change an account's display name or DMARC policy; prints the account as `show` does."""
    if name is None and dmarc_policy is None:
        raise UserInputError(
            "nothing to change: give --name TEXT and/or --dmarc-policy accept|tag|quarantine"
        )
    domains = ctx.settings.smart_domains

    def change(session: Session) -> dict[str, Any]:
        if name is not None:
            accounts.set_account_name(session, slug, name)
        if dmarc_policy is not None:
            accounts.set_dmarc_policy(session, slug, dmarc_policy)
        return accounts.describe_account(accounts.get_account(session, slug), domains)

    data = ctx.run(change)
    changes = ([f"name {data['name']!r}"] if name is not None else []) + (
        [f"mail failing DMARC is {DMARC_OUTCOMES[data['dmarc_policy']]}"]
        if dmarc_policy is not None
        else []
    )
    emit(data, as_json, lambda d: f"account {d['slug']}: {', '.join(changes)}")


@cli.group()
def user() -> None:
    """Users of an account (their addresses are never treated as contacts)."""


@user.command("add")
@click.argument("slug")
@click.argument("email")
@click.option("--name")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
@click.option("--no-email-access", is_flag=True, help="The user may not read shared mail.")
@json_option
@pass_context
def user_add(
    ctx: Context,
    slug: str,
    email: str,
    name: str | None,
    admin: bool,
    no_email_access: bool,
    as_json: bool,
) -> None:
    """Add a user to an account (warns when the address is a contact's: see `contact add`)."""
    domains = ctx.settings.smart_domains

    def add(session: Session) -> tuple[dict[str, Any], str | None]:
        added = accounts.add_user(
            session,
            slug,
            email,
            name=name,
            admin=admin,
            email_access=not no_email_access,
            smart_domains=domains,
        )
        return added, crm.user_address_warning(session, slug, added["email"])

    data, warning = ctx.run(add)
    emit(data, as_json, lambda d: f"user {d['email']} added as {d['role']}")
    warn(warning)


listing_command(
    user,
    "List the users of an account.",
    accounts.list_users,
    lambda r: (
        f"{r['id']:>6}  {r['email']}  {r['role']}"
        + ("" if r["email_access"] else "  (no email access)")
    ),
)


# -- CRM cards ------------------------------------------------------------------------------


@cli.group()
def contact() -> None:
    """Contacts."""


@contact.command("add")
@click.argument("slug")
@click.argument("email")
@click.option("--name")
@json_option
@pass_context
def contact_add(ctx: Context, slug: str, email: str, name: str | None, as_json: bool) -> None:
    """Add a contact with one address (warns when it is a user's: mail with it reaches no card)."""
    domains = ctx.settings.smart_domains

    def add(session: Session) -> tuple[dict[str, Any], str | None]:
        added = crm.add_contact(session, slug, email, name, domains)
        return added, crm.user_address_warning(session, slug, added["emails"][0])

    data, warning = ctx.run(add)
    emit(data, as_json, lambda d: f"contact {d['id']} added: {d['name']} <{d['emails'][0]}>")
    warn(warning)


listing_command(
    contact,
    "List the contacts of an account.",
    crm.list_contacts,
    lambda r: f"{r['id']:>6}  {r['name']}  {', '.join(r['emails'])}",
)


def _card_commands(
    group_name: str,
    add: Callable[[Session, str, str, list[str]], dict[str, Any]],
    listing: Callable[[Session, str], list[dict[str, Any]]],
) -> click.Group:
    """``lead`` and ``customer`` have the same two commands (``add`` and ``list``)."""

    @cli.group(group_name, help=f"{group_name.capitalize()}s.")
    def group() -> None:
        pass

    @group.command("add", help=f"Add a {group_name}, linked to contacts by address.")
    @click.argument("slug")
    @click.argument("name")
    @click.option("--contact", "contacts", multiple=True, metavar="EMAIL")
    @json_option
    @pass_context
    def add_command(
        ctx: Context, slug: str, name: str, contacts: tuple[str, ...], as_json: bool
    ) -> None:
        data = ctx.run(lambda s: add(s, slug, name, list(contacts)))
        emit(data, as_json, lambda d: f"{group_name} {d['id']} added: {d['name']}")

    listing_command(
        group,
        f"List the {group_name}s of an account.",
        listing,
        lambda r: (
            f"{r['id']:>6}  {r['name']}"
            + (f"  ({r['status']})" if "status" in r else "")
            + f"  contacts {r['contact_ids']}"
        ),
    )
    return group


lead_group = _card_commands("lead", crm.add_lead, crm.list_leads)
_card_commands("customer", crm.add_customer, crm.list_customers)


@lead_group.command("set")
@click.argument("lead_id", type=int)
@click.option(
    "--status",
    type=click.Choice([status.value for status in LeadStatus]),
    help="open (mail with its contacts is noted on it), or won or lost (no longer).",
)
@json_option
@pass_context
def lead_set(ctx: Context, lead_id: int, status: str | None, as_json: bool) -> None:
    """Change a lead's status; only open leads receive notes from mail."""
    if status is None:
        raise UserInputError("nothing to change: give --status open|won|lost")
    data = ctx.run(lambda s: crm.set_lead_status(s, lead_id, status))
    emit(data, as_json, lambda d: f"lead {d['id']} ({d['name']}) is {d['status']}")


@cli.group()
def note() -> None:
    """Notes (emails on cards)."""


@note.command("list")
@click.argument("slug")
@click.option("--as", "as_user", metavar="USER_EMAIL", help="Show what this user may see.")
@json_option
@pass_context
def note_list(ctx: Context, slug: str, as_user: str | None, as_json: bool) -> None:
    """List the notes on an account's cards (mailbox emails as the user may see them)."""
    rows = ctx.run(lambda s: crm.list_notes(s, slug, as_user))
    emit(
        rows,
        as_json,
        lambda data: "\n".join(
            f"{r['id']:>6}  {r['entity_type']} {r['entity_id']}  "
            + ("(insufficient rights)" if r["insufficient_rights"] else r["subject"])
            for r in data
        ),
    )


# -- the spool and the server ---------------------------------------------------------------


@cli.group("inbound")
def inbound_group() -> None:
    """Received messages (the spool)."""


listing_command(
    inbound_group,
    "List an account's received messages with their status.",
    inbound.list_inbound,
    lambda r: f"{r['id']:>6}  {r['status']:10} {r['reason'] or '':12} {r['message_id'] or ''}",
)


@inbound_group.command("retry")
@click.argument("inbound_id", type=int)
@json_option
@pass_context
def inbound_retry(ctx: Context, inbound_id: int, as_json: bool) -> None:
    """Put a message (typically a dead one) back in the queue."""
    data = ctx.run(lambda s: inbound.retry_inbound(s, inbound_id))
    emit(data, as_json, lambda d: f"inbound {d['id']} queued again")


@cli.command()
@click.option("--smtp-host", help="Overrides CRMMAIL_SMTP_HOST.")
@click.option("--smtp-port", type=click.IntRange(0, 65535), help="Overrides CRMMAIL_SMTP_PORT.")
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    help="Serve /healthz, /readyz and /metrics here (overrides CRMMAIL_HTTP_PORT).",
)
@click.option(
    "--tls-cert-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate (chain) offered with STARTTLS (overrides CRMMAIL_TLS_CERT_FILE).",
)
@click.option(
    "--tls-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key of that certificate (overrides CRMMAIL_TLS_KEY_FILE).",
)
@pass_context
def serve(
    ctx: Context,
    smtp_host: str | None,
    smtp_port: int | None,
    http_port: int | None,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
) -> None:
    """Run the SMTP listener, the worker and the mailbox syncs until Ctrl-C or SIGTERM."""
    settings = ctx.settings.model_copy(
        update={
            key: value
            for key, value in (
                ("smtp_host", smtp_host),
                ("smtp_port", smtp_port),
                ("http_port", http_port),
                ("tls_cert_file", tls_cert_file),
                ("tls_key_file", tls_key_file),
            )
            if value is not None
        }
    )
    db = ctx.database()
    try:
        check_writable(db.engine)
    except DatabaseReadOnly as error:  # it may be writable again soon: serve, and say so
        warn(f"{error}; until then every message is answered 451 (try again later)")
    logging.getLogger("crmmail").setLevel(logging.INFO)  # a mail server logs every message
    asyncio.run(serve_forever(db, settings))


@cli.command()
@click.option(
    "--until-idle", is_flag=True, required=True, help="Drain the due messages, then exit."
)
@json_option
@pass_context
def process(ctx: Context, until_idle: bool, as_json: bool) -> None:
    """Process the spooled messages that are due, then exit."""
    count = Worker(ctx.database(), ctx.settings).run_until_idle()
    emit({"processed": count}, as_json, lambda d: f"processed {d['processed']} message(s)")


# -- connected mailboxes and their email ----------------------------------------------------


def sync_scheduler(ctx: Context) -> SyncScheduler:
    """The scheduler over this command's database, key ring and a time-seeded jitter."""
    return SyncScheduler.from_settings(ctx.database(), ctx.settings)


def _sync_text(result: SyncResult) -> str:
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
            f"mailbox {d['id']} connected: {d['email']}; the first import runs in the"
            " background (`crmmail serve`, or `crmmail sync --until-idle`)"
        ),
    )


listing_command(
    mailbox,
    "List an account's mailboxes and how their sync stands.",
    mailboxes.list_mailboxes,
    lambda r: (
        f"{r['id']:>6}  {r['email']}  {r['kind']}  {r['owner']}  {r['status']}"
        + (f"  ({r['last_error']})" if r["last_error"] else "")
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
    emit(data, as_json, lambda d: f"mailbox {d['id']}: password updated, status {d['status']}")


@mailbox.command("sync")
@click.argument("mailbox_id", type=int)
@json_option
@pass_context
def mailbox_sync(ctx: Context, mailbox_id: int, as_json: bool) -> None:
    """Sync one mailbox now."""
    result = sync_scheduler(ctx).sync_mailbox(mailbox_id)
    emit(result.as_dict(), as_json, lambda d: _sync_text(result))
    if result.error:
        sys.exit(1)


@cli.command("sync")
@click.option("--until-idle", is_flag=True, required=True, help="Run due syncs, then exit.")
@json_option
@pass_context
def sync_command(ctx: Context, until_idle: bool, as_json: bool) -> None:
    """Sync every mailbox that is due, once, then exit."""
    results = sync_scheduler(ctx).run_until_idle()
    emit(
        [result.as_dict() for result in results],
        as_json,
        lambda d: "\n".join(_sync_text(r) for r in results) or "no mailbox is due",
    )


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
            base, subject=subject, body=_body(body, body_file), is_html=is_html
        )
    data = emails.send_email(ctx.database(), ctx.settings, request)
    emit(data, as_json, lambda d: f"sent: email {d['id']}, {d['message_id']}")


def _body(body: str | None, body_file: Path | None) -> str:
    if (body is None) == (body_file is None):
        raise UserInputError("give the body with exactly one of --body or --body-file")
    if body is not None:
        return body
    assert body_file is not None
    try:
        return body_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"no file {body_file}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read {body_file} as UTF-8 text: {error}") from None


as_option = click.option(
    "--as", "as_user", required=True, metavar="USER_EMAIL", help="The user acting."
)


def _email_rows(data: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r['id']:>6}  {r['folder']:5} {r['date'] or '':25} {r['subject']}" for r in data
    )


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
    emit(rows, as_json, _email_rows)


@email_group.command("show")
@click.argument("email_id", type=int)
@as_option
@json_option
@pass_context
def email_show(ctx: Context, email_id: int, as_user: str, as_json: bool) -> None:
    """Show one email with its text and attachments."""
    data = ctx.run(lambda s: mail_views.show_email(s, email_id, as_user))
    emit(data, as_json, _email_text)


def _email_text(email: dict[str, Any]) -> str:
    """An email as ``email show`` prints it: its header lines, its attachments, its text."""
    lines = [email["subject"], f"From: {email['from']}", f"To: {email['to']}"]
    if email["cc"]:
        lines.append(f"Cc: {email['cc']}")
    lines.append(f"Date: {email['date'] or '(none)'}")
    lines += [
        f"Attachment {a['id']}: {a['filename'] or '(no name)'} ({a['content_type']}, "
        f"{a['size']} bytes)"
        for a in email["attachments"]
    ]
    text: str = email["text"]
    return "\n".join(lines) + "\n\n" + text.rstrip("\r\n")


@email_group.command("delete")
@click.argument("email_id", type=int)
@as_option
@json_option
@pass_context
def email_delete(ctx: Context, email_id: int, as_user: str, as_json: bool) -> None:
    """Move an email to the CRM's Deleted folder (never deleted on the mail server)."""
    data = ctx.run(lambda s: deleted.delete_email(s, email_id, as_user, utcnow()))
    emit(data, as_json, lambda d: f"email {d['id']} moved to the Deleted folder")


@email_group.command("restore")
@click.argument("email_id", type=int)
@as_option
@json_option
@pass_context
def email_restore(ctx: Context, email_id: int, as_user: str, as_json: bool) -> None:
    """Bring an email back from the Deleted folder (admins)."""
    data = ctx.run(lambda s: deleted.restore_email(s, email_id, as_user))
    emit(data, as_json, lambda d: f"email {d['id']} restored")


@cli.group("deleted")
def deleted_group() -> None:
    """The CRM's Deleted folder (admins only; emails stay 30 days)."""


@deleted_group.command("list")
@click.argument("slug")
@as_option
@json_option
@pass_context
def deleted_list(ctx: Context, slug: str, as_user: str, as_json: bool) -> None:
    """List the Deleted folder."""
    rows = ctx.run(lambda s: mail_views.list_deleted(s, slug, as_user))
    emit(rows, as_json, _email_rows)


@cli.command()
@json_option
@pass_context
def purge(ctx: Context, as_json: bool) -> None:
    """Remove for good what has been in the Deleted folder for 30 days (serve does it hourly)."""
    count = ctx.run(lambda s: deleted.purge_deleted(s, utcnow()))
    emit({"purged": count}, as_json, lambda d: f"purged {d['purged']} email(s)")


@cli.group("thread")
def thread_group() -> None:
    """Threads of the mailboxes' emails."""


@thread_group.command("list")
@click.argument("slug")
@as_option
@click.option("--mailbox", "mailbox_id", type=int)
@json_option
@pass_context
def thread_list(
    ctx: Context, slug: str, as_user: str, mailbox_id: int | None, as_json: bool
) -> None:
    """List the threads the user may read, the most recent first."""
    rows = ctx.run(lambda s: mail_views.list_threads(s, slug, as_user, mailbox_id))
    emit(
        rows,
        as_json,
        lambda data: "\n".join(
            f"{r['id']:>6}  {len(r['message_ids']):>3} msg  {r['counterpart']}  {r['subject']}"
            for r in data
        ),
    )


@cli.group("attachment")
def attachment_group() -> None:
    """Attachments, read from the mail server on demand."""


@attachment_group.command("get")
@click.argument("attachment_id", type=int)
@as_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="The file to write, or - for standard output.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@pass_context
def attachment_get(ctx: Context, attachment_id: int, as_user: str, out: Path, force: bool) -> None:
    """Fetch an attachment from the server into a file (or onto standard output)."""
    to_stdout = str(out) == "-"
    if not to_stdout and out.exists() and not force:
        raise UserInputError(f"{out} exists: give --force to overwrite it, or another --out")
    found = attachments.get_attachment(ctx.database(), ctx.settings, attachment_id, as_user)
    if to_stdout:
        click.echo(found.content, nl=False)  # bytes go to the binary stream, unchanged
        return
    _write_file(out, found.content, replace=force)
    size = len(found.content)
    click.echo(f"{found.filename or 'attachment'} ({found.content_type}, {size} bytes) -> {out}")


def _write_file(path: Path, content: bytes, *, replace: bool) -> None:
    """Write ``content`` to ``path`` whole or not at all; an existing file only if ``replace``."""
    try:
        handle = path.open("wb" if replace else "xb")
    except FileExistsError:
        raise UserInputError(f"{path} exists: give --force to overwrite it") from None
    except OSError as error:
        raise UserInputError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with handle:
            handle.write(content)
    except OSError as error:
        path.unlink(missing_ok=True)  # no half-written file left behind
        raise UserInputError(f"cannot write {path}: {error.strerror or error}") from None


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
        lambda d: f"mailbox {d['id']}: {d['kind']}, threads {'on' if d['threads'] else 'off'}",
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
    emit(data, as_json, lambda d: f"mailbox {d['id']} disconnected")


@cli.group("template")
def template_group() -> None:
    """Mail templates with {{contact.name}}-style fields."""


@template_group.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--subject", required=True)
@click.option("--body")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "is_html", is_flag=True, help="The body is HTML.")
@json_option
@pass_context
def template_add(
    ctx: Context,
    slug: str,
    name: str,
    subject: str,
    body: str | None,
    body_file: Path | None,
    is_html: bool,
    as_json: bool,
) -> None:
    """Save a template (its fields are checked now, not when sending)."""
    text = _body(body, body_file)
    data = ctx.run(lambda s: templates.add_template(s, slug, name, subject, text, is_html))
    emit(data, as_json, lambda d: f"template {d['name']!r} saved")


listing_command(
    template_group,
    "List an account's templates.",
    templates.list_templates,
    lambda r: f"{r['id']:>6}  {r['name']}  ({'html' if r['html'] else 'text'})  {r['subject']}",
)


@template_group.command("edit")
@click.argument("slug")
@click.argument("name")
@click.option("--name", "new_name", help="A new name.")
@click.option("--subject")
@click.option("--body")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html/--text", "is_html", default=None, help="The body is HTML, or plain text.")
@json_option
@pass_context
def template_edit(
    ctx: Context,
    slug: str,
    name: str,
    new_name: str | None,
    subject: str | None,
    body: str | None,
    body_file: Path | None,
    is_html: bool | None,
    as_json: bool,
) -> None:
    """Change a template's name, subject, body or kind (checked as `add` checks them)."""
    if (new_name, subject, body, body_file, is_html) == (None,) * 5:
        raise UserInputError(
            "nothing to change: give --name, --subject, --body or --body-file, --html or --text"
        )
    text = None if body is None and body_file is None else _body(body, body_file)
    data = ctx.run(
        lambda s: templates.edit_template(
            s, slug, name, new_name=new_name, subject=subject, body=text, is_html=is_html
        )
    )
    emit(data, as_json, lambda d: f"template {d['name']!r} saved")


@template_group.command("delete")
@click.argument("slug")
@click.argument("name")
@json_option
@pass_context
def template_delete(ctx: Context, slug: str, name: str, as_json: bool) -> None:
    """Delete a template (mail already sent with it stays as it was)."""
    data = ctx.run(lambda s: templates.delete_template(s, slug, name))
    emit(data, as_json, lambda d: f"template {d['name']!r} deleted")


@template_group.command("render")
@click.argument("slug")
@click.argument("name")
@click.option("--contact", "contact_id", type=int, required=True)
@click.option("--lead", "lead_id", type=int)
@click.option("--as", "as_user", metavar="USER_EMAIL", help="Fills {{user.*}}.")
@json_option
@pass_context
def template_render(
    ctx: Context,
    slug: str,
    name: str,
    contact_id: int,
    lead_id: int | None,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Show a template filled in for a contact (and lead)."""
    data = ctx.run(lambda s: templates.render(s, slug, name, contact_id, lead_id, as_user))
    emit(data, as_json, lambda d: f"Subject: {d['subject']}\n\n{d['text']}")


@cli.command("dns-check")
@click.argument("domain")
@click.option(
    "--mx", "mx_hosts", multiple=True, required=True, metavar="HOST", help="Your crmmail MX host."
)
@click.option(
    "--nameserver", "nameservers", multiple=True, metavar="IP[:PORT]", help="Ask this resolver."
)
@json_option
def dns_check(
    domain: str, mx_hosts: tuple[str, ...], nameservers: tuple[str, ...], as_json: bool
) -> None:
    """Check the MX, SPF and DMARC records a smart domain needs; exit 1 on an error."""
    report = dnscheck.check_domain(domain, mx_hosts, dnscheck.make_resolver(nameservers))
    findings = [{"level": f.level, "what": f.what, "detail": f.detail} for f in report.findings]
    emit(
        {"domain": report.domain, "ok": report.ok, "findings": findings},
        as_json,
        lambda d: "\n".join(f"{f['level']:5}  {f['what']}: {f['detail']}" for f in findings),
    )
    if not report.ok:
        sys.exit(1)
