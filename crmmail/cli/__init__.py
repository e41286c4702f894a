"""The ``crmmail`` command line: one module per command group, on the core in ``core``.

``crmmail.cli:main`` is the console script; ``crmmail.cli.cli`` is the click group (tests run
it in-process). Importing this package registers every command group on it.
"""

from crmmail.cli import (  # noqa: F401  (each module adds its commands to the group)
    account,
    attachment,
    cards,
    contact,
    deleted,
    dns_check,
    emails,
    inbound,
    initialise,
    mailbox,
    note,
    server,
    template,
    thread,
    user,
)
from crmmail.cli.core import cli, main

__all__ = ["cli", "main"]
