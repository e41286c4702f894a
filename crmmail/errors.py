"""The error tree: one root, and the errors a user or operator is shown as one clear line.

Messages say what is wrong in words no face owns (no command, option or URL). What would fix
it is a ``Hint``: data each face words its own way (the command line names a command).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hint:
    """What the user can do about an error, as data: ``action`` names it, ``params`` fill it."""

    action: str
    params: Mapping[str, object] = field(default_factory=dict)


class CrmmailError(Exception):
    """Root of every error crmmail raises on purpose."""

    def __init__(self, message: str, *, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UserInputError(CrmmailError):
    """Bad input from the command line or an API caller; the message says what is wrong."""


class NotFound(UserInputError):
    """A named thing (account, message, contact) does not exist."""


class AlreadyExists(UserInputError):
    """A thing with that unique name already exists."""
