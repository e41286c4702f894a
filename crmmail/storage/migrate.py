"""Alembic, driven from code: upgrade a database to head (``crmmail init``) and check it."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from crmmail.errors import CrmmailError, UserInputError
from crmmail.storage.database import SQLITE_READONLY

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_CANTOPEN = 14  # "unable to open database file"
POSTGRESQL_REFUSED_WRITE = {"25006", "42501"}  # read_only_sql_transaction, insufficient_privilege
# A write that changes nothing, rolled back: whether the database takes writes at all.
_WRITE_PROBE = text("UPDATE alembic_version SET version_num = version_num")


class DatabaseReadOnly(CrmmailError):
    """The database answers reads but refuses writes (file, mount, or server set read-only)."""


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on ``engine`` (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def initialise(engine: Engine) -> None:
    """``crmmail init``: the schema at head in a database that takes writes, or a clear error.

    An SQLite path in no directory, or naming one, is said in words first (SQLite would only
    say "unable to open database file").
    """
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        if path.is_dir():
            raise UserInputError(
                f"{path} is a directory: the database URL names the file (sqlite:///DIR/crmmail.db)"
            )
        if not path.parent.is_dir():
            raise UserInputError(
                f"no directory {path.parent} for the database file: create it, or change the URL"
            )
    try:
        upgrade_to_head(engine)
    except DBAPIError as error:
        if _sqlite_code(error) == SQLITE_CANTOPEN:
            raise DatabaseReadOnly(
                f"cannot open or create the database file {engine.url.database}: make its"
                " directory writable"
            ) from None
        if not _refuses_writes(error):
            raise
        raise _read_only(engine, error) from None
    check_writable(engine)


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already."""
    command.upgrade(alembic_config(engine), "head")


def is_at_head(engine: Engine) -> bool:
    """Whether the database's revision is the newest one."""
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads


def check_writable(engine: Engine) -> None:
    """Raise ``DatabaseReadOnly`` unless the database (at head) takes a write; nothing is kept.

    SQLite opens a file it may not write read-only without a word, and PostgreSQL can be set
    read-only (``default_transaction_read_only``, a standby): only a write tells.
    """
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            connection.execute(_WRITE_PROBE)
            transaction.rollback()
    except DBAPIError as error:  # whatever stops this write stops every other one
        raise _read_only(engine, error) from None


def _sqlite_code(error: DBAPIError) -> int | None:
    """SQLite's primary result code of the error, if SQLite raised it."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _refuses_writes(error: DBAPIError) -> bool:
    """Whether the database refused a write as read-only or not permitted."""
    if _sqlite_code(error) is not None:
        return _sqlite_code(error) == SQLITE_READONLY
    return getattr(error.orig, "sqlstate", None) in POSTGRESQL_REFUSED_WRITE


def _read_only(engine: Engine, error: DBAPIError) -> DatabaseReadOnly:
    reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
    where = engine.url.render_as_string(hide_password=True)
    return DatabaseReadOnly(
        f"the database {where} refuses writes ({reason}): make it writable (on SQLite the"
        " file, its directory and their mount; on PostgreSQL the server and the role)"
    )
