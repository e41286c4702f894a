"""``crmmail init``: create or upgrade the database schema, and the key for mailbox passwords."""

from crmmail.cli.core import Context, cli, emit, json_option, pass_context
from crmmail.connector.facade import ensure_key_file
from crmmail.errors import CrmmailError
from crmmail.storage.migrate import initialise


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
