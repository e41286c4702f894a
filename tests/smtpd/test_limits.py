"""Connection limits: beyond them a client gets 421 instead of the greeting, and others go on."""

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.storage.database import Database
from tests.intake import message, running_intake, send


def _greeting(port: int, stack: ExitStack) -> str:
    client = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
    return client.recv(1024).decode()


@contextmanager
def _intake(db: Database, settings: Settings, total: int, per_ip: int) -> Iterator[int]:
    limited = settings.model_copy(
        update={"max_connections": total, "max_connections_per_ip": per_ip}
    )
    with running_intake(db, limited) as port:
        yield port


def test_a_client_address_beyond_its_limit_gets_421(
    db: Database, settings: Settings, acme: int
) -> None:
    with _intake(db, settings, total=50, per_ip=2) as port, ExitStack() as first:
        assert _greeting(port, first).startswith("220 ")
        assert _greeting(port, first).startswith("220 ")
        with ExitStack() as third:
            assert _greeting(port, third) == replies.TOO_MANY_CONNECTIONS + "\r\n"
        first.close()  # the two sessions end: room again
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with ExitStack() as again:
                if _greeting(port, again).startswith("220 "):
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the limit was not released")
        send(port, message(), ["acme@mail.localhost"])  # mail flows again


def test_the_total_limit(db: Database, settings: Settings, acme: int) -> None:
    with _intake(db, settings, total=1, per_ip=10) as port, ExitStack() as stack:
        assert _greeting(port, stack).startswith("220 ")
        assert _greeting(port, stack) == replies.TOO_MANY_CONNECTIONS + "\r\n"
