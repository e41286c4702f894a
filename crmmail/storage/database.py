"""The database handle: engine set-up per backend and the unit of work owned by each boundary."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from crmmail.errors import UserInputError

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
URL_FORMS = "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME"
SQLITE_READONLY = 8  # the primary result code of "attempt to write a readonly database" and kin
READ_ONLY_OPTION = "crmmail_read_only"
# An execution option holding a callable run just before an SQLite write transaction begins
# (that is, at the first statement of a transaction, not when it is opened).
BEFORE_WRITE_OPTION = "crmmail_before_write"
# A PostgreSQL server that stops answering must turn into an error, not a hang: bounded connect,
# TCP keepalives and user timeout for a dead peer, and a ceiling on any one statement.
POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    "options": "-c statement_timeout=60000",
}


def _configure_sqlite(engine: Engine) -> None:
    """WAL, ``synchronous=FULL``, foreign keys, and ``BEGIN IMMEDIATE`` for transactions that write.

    pysqlite's own deferred BEGIN lets two writers both read and then fail to upgrade their lock
    (SQLITE_BUSY without waiting); taking the write lock up front makes them queue instead. Read
    transactions (``Database.read``) begin deferred: in WAL mode they never wait for a writer.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        read_only = options.get(READ_ONLY_OPTION, False)
        before_write = options.get(BEFORE_WRITE_OPTION)
        if before_write is not None and not read_only:
            before_write()  # e.g. wait for this process's other writer (storage.write_priority)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # SQLite opens a file it may not write read-only, without a word, and that connection
        # stays read-only once the file is writable again: treated as a lost connection, it is
        # thrown away (the pool with it) and the next transaction opens a fresh one.
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == SQLITE_READONLY:
            context.is_disconnect = True


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///...`` or ``postgresql+psycopg://...``; anything else is refused.

    Its errors never show a statement's parameters (a message's body, addresses, secrets): any
    log line or traceback that quotes a failed statement shows its SQL only.
    """
    parsed = checked_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed, pool_pre_ping=True, connect_args=POSTGRESQL_CONNECT_ARGS, hide_parameters=True
    )


def checked_url(url: str) -> URL:
    """``url`` parsed, or a ``UserInputError`` saying what is wrong with it (password hidden).

    >>> checked_url("sqlite://")
    Traceback (most recent call last):
    crmmail.errors.UserInputError: the database URL 'sqlite://' names no file: use sqlite:///PATH
    """
    shown = repr(_without_password(url))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UserInputError(f"invalid database URL {shown}: {URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername not in SQLITE_DRIVERS:
            raise UserInputError(f"unsupported SQLite driver in {shown}: use sqlite:///PATH")
        if parsed.database in (None, "", ":memory:"):
            raise UserInputError(f"the database URL {shown} names no file: use sqlite:///PATH")
        if parsed.query:
            raise UserInputError(
                f"the database URL {shown} has options after '?': crmmail sets SQLite's options"
                " itself; use sqlite:///PATH"
            )
    elif backend != "postgresql":
        raise UserInputError(f"unsupported database {backend!r}: {URL_FORMS}")
    elif parsed.port is not None and not 0 < parsed.port < 65536:
        raise UserInputError(
            f"invalid database URL {shown}: port {parsed.port} is not between 1 and 65535"
        )
    return parsed


def _without_password(url: str) -> str:
    """``url`` with the password (between ``user:`` and ``@``) shown as ``***``.

    >>> _without_password("postgresql://crm:p@ss:w@rd@db/crm")
    'postgresql://crm:***@db/crm'
    """
    return re.sub(r"^([^:/]*://[^:/@]*:)[^/]*@", r"\1***@", url)


class Database:
    """An engine and its session factory; ``transaction()`` is the unit of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str) -> "Database":
        return cls(make_engine(url))

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads: on SQLite it does not queue behind writers."""
        with self._read_sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
