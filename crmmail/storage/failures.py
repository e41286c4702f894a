"""What may be recorded of a failure: its type, a short reason and where it happened, never data.

``str()`` of an SQLAlchemy ``StatementError`` holds the whole statement and its parameters (a
message's body, its addresses), and a PostgreSQL error's DETAIL repeats the failing row; a plain
exception's message may quote the value it choked on. So a failure is summed up on one line from
what carries no data: the exception's type, for a database error its type, code and, where it
quotes no value, its message (``_database_code``), and the innermost frame of our code.
``failure_frames`` gives the whole path, on one line, for a debug log.

>>> try:
...     {}["ann@x.test"]
... except KeyError as error:
...     failure_summary(error)
'KeyError'
"""

import os
import traceback
from collections.abc import Iterator

from sqlalchemy.exc import StatementError

MAX_DATABASE_MESSAGE = 200

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PACKAGE_DIR = os.path.join(_PACKAGE_ROOT, "crmmail") + os.sep


def failure_summary(error: BaseException) -> str:
    """One line: what failed and where, with no statement, parameter or message text.

    >>> from sqlalchemy.exc import StatementError
    >>> failure_summary(StatementError("boom", "INSERT ... 'secret'", {"a": 1}, OverflowError()))
    'OverflowError in a database statement'
    """
    summary = type(error).__name__
    if isinstance(error, StatementError):
        cause = error.orig
        summary = (
            f"{type(cause).__name__ if cause is not None else summary} in a database statement"
        )
        code = _database_code(cause)
        if code:
            summary += f" ({code})"
    frame = next(reversed(list(_our_frames(error))), None)
    return f"{summary} at {frame}" if frame else summary


def failure_frames(error: BaseException) -> str:
    """The frames of our code the failure passed, outermost first, on one line."""
    return " > ".join(_our_frames(error)) or "no frame of crmmail"


def _our_frames(error: BaseException) -> Iterator[str]:
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith(_PACKAGE_DIR):
            path = os.path.relpath(frame.filename, _PACKAGE_ROOT)
            yield f"{path}:{frame.lineno} ({frame.name})"


def _database_code(cause: BaseException | None) -> str:
    """The database's own account of the error where it names no value: SQLite's error name and
    message (SQLite never quotes a bound parameter); PostgreSQL's SQLSTATE, and its message only
    for integrity errors and a trigger's RAISE (class 23 and P0001: the values are in DETAIL,
    which is left out), not for data errors, whose message quotes the value."""
    if cause is None:
        return ""
    name = getattr(cause, "sqlite_errorname", None)
    if isinstance(name, str):
        return f"{name}: {_first_line(str(cause))}"
    sqlstate = getattr(cause, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return ""
    message = getattr(getattr(cause, "diag", None), "message_primary", None)
    if isinstance(message, str) and (sqlstate.startswith("23") or sqlstate == "P0001"):
        return f"SQLSTATE {sqlstate}: {_first_line(message)}"
    return f"SQLSTATE {sqlstate}"


def _first_line(text: str) -> str:
    return text.strip().partition("\n")[0][:MAX_DATABASE_MESSAGE]
