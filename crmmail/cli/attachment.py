"""``crmmail attachment get``: fetch an attachment from the mail server into a file."""

from pathlib import Path

import click

from crmmail.cli.core import Context, as_option, cli, pass_context
from crmmail.errors import UserInputError
from crmmail.services import attachments


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
