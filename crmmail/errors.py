"""The error tree: one root, and the errors a user or operator is shown as one clear line."""


class CrmmailError(Exception):
    """Root of every error crmmail raises on purpose."""


class UserInputError(CrmmailError):
    """Bad input from the command line or an API caller; the message says what to do."""


class NotFound(UserInputError):
    """A named thing (account, message, contact) does not exist."""


class AlreadyExists(UserInputError):
    """A thing with that unique name already exists."""


class StorageUnavailable(CrmmailError):
    """The database could not be reached or refused the write; try again later."""
