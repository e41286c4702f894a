"""The command line's core: the ``crmmail`` group, its context, output and one-line errors.

Settings come from the environment (``CRMMAIL_*``); flags override them. With ``--json`` each
command prints one JSON document on stdout (the services' results in their JSON form); bad
input exits non-zero with one line on stderr, never a traceback.
"""

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.errors import CrmmailError, UserInputError
from crmmail.logs import configure_logging
from crmmail.services.results import to_json
from crmmail.storage.database import Database
from crmmail.storage.migrate import is_at_head

T = TypeVar("T")
R = TypeVar("R")

# What the command line says to do about an error a service raised with a ``Hint``: the whole
# line, from the service's ``message`` and the hint's parameters (``slug`` is SLUG unless given).
HINTS = {
    "create_account": "{message}: create it with `crmmail account create {slug}`",
    "give_account_name": "{message}: give a non-empty --name",
    "add_contact": "{message}: add it with `crmmail contact add`",
    "add_user": "{message}: add them with `crmmail user add`",
    "list_leads": "{message}: see `crmmail lead list SLUG`",
    "list_mailboxes": "{message}: see `crmmail mailbox list {slug}`",
    "list_inbound": "{message}: see `crmmail inbound list SLUG`",
    "list_templates": "{message}: see `crmmail template list SLUG`",
    "change_mailbox_type": "{message} (change its type afterwards with `crmmail mailbox set`)",
    "unshare_shared_box": "--share-with-admin is for personal mailboxes: leave it out",
    "set_password": "{message} with `crmmail mailbox password {mailbox_id} --password-env VAR`",
    "give_recipient": "give at least one recipient with --to",
    "update_password": (
        "{reason}: update it with `crmmail mailbox password {mailbox_id}`; nothing was sent"
    ),
}


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


def emit(data: T, as_json: bool, text: Callable[[T], str]) -> None:
    """Print ``data`` (a service's result, or a list of them) as JSON or as ``text`` words it."""
    click.echo(
        json.dumps(to_json(data), ensure_ascii=False, indent=None) if as_json else text(data)
    )


def warn(message: str | None) -> None:
    """One line on stderr about something done that may not be what was meant (exit code 0)."""
    if message is not None:
        click.echo(f"crmmail: warning: {message}", err=True)


def fail(message: str) -> NoReturn:
    click.echo(f"crmmail: error: {message}", err=True)
    sys.exit(1)


def error_line(error: CrmmailError) -> str:
    """An error in the command line's words: its hint, if any, names the command to run."""
    hint = error.hint
    if hint is None or hint.action not in HINTS:
        return str(error)
    params = {"slug": "SLUG", **hint.params}
    return HINTS[hint.action].format(message=error, **params)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn our errors and the database's into one line on stderr and exit code 1."""
    try:
        yield
    except CrmmailError as error:
        fail(error_line(error))
    except DBAPIError as error:
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        fail(f"database error: {first_line}")
    except SQLAlchemyError as error:
        fail(f"database error: {type(error).__name__}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
as_option = click.option(
    "--as", "as_user", required=True, metavar="USER_EMAIL", help="The user acting."
)
pass_context = click.make_pass_decorator(Context)


def listing_command(
    group: click.Group,
    help_text: str,
    listing: Callable[[Session, str], Sequence[R]],
    row_text: Callable[[R], str],
) -> None:
    """Add ``GROUP list SLUG [--json]``: one line per row, or the rows as one JSON array."""

    @group.command("list", help=help_text)
    @click.argument("slug")
    @json_option
    @pass_context
    def list_command(ctx: Context, slug: str, as_json: bool) -> None:
        rows = ctx.run(lambda s: listing(s, slug))
        emit(rows, as_json, lambda data: "\n".join(row_text(row) for row in data))


def read_body(body: str | None, body_file: Path | None) -> str:
    """The text of ``--body`` or of ``--body-file`` (exactly one of them)."""
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
        fail(f"invalid setting {name}: {problem['msg']}")
    configure_logging(settings.log_format, logging.INFO if verbose else logging.WARNING)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)
    ctx.with_resource(clear_errors())
