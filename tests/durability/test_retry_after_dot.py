"""A client that hangs up right after the final ``.`` and sends the message again: stored once.

Whether the intake commits the first copy depends on a race: aiosmtpd cancels the session when
the connection closes, which may be before the final dot is read; once the commit has begun it
is shielded and completes. When the first copy is committed, the retry is spooled a second time
and the worker keeps one copy and drops the other as a duplicate. Either way the user sees one
note and one contact. The ``after-commit`` case is the sure one: the 250 was sent and the client
hung up without reading it.
"""

import socket
import struct
from pathlib import Path

import pytest

from crmmail.services import crm, inbound
from crmmail.storage.database import Database
from tests.intake import message, send, wire_bytes
from tests.serveproc import RawSmtp, running_serve, wait_until

RECIPIENT = "acme+contact@mail.localhost"
MAIL = wire_bytes(message(to=RECIPIENT, cc=None, message_id="<once@corp.test>"))


def hang_up_after_the_dot(port: int, how: str, db: Database) -> None:
    client = RawSmtp(port)
    assert client.command(b"EHLO client.test").startswith(b"250")
    assert client.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
    assert client.command(f"RCPT TO:<{RECIPIENT}>".encode()).startswith(b"250")
    assert client.command(b"DATA").startswith(b"354")
    client.sock.sendall(MAIL + b".\r\n")
    if how == "after-commit":  # the 250 is on its way (lost in transit, as it were)
        wait_until(lambda: len(spool(db)) == 1, 30, "the first copy to be spooled")
    if how == "rst":  # RST instead of FIN: the connection is torn down at once
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # the 250 is never read


def spool(db: Database) -> list[tuple[str, str | None]]:
    with db.read() as session:
        return [(row["status"], row["reason"]) for row in inbound.list_inbound(session, "acme")]


@pytest.mark.parametrize("how", ["after-commit", "fin", "rst"])
def test_a_message_sent_again_after_a_hang_up_at_the_dot_is_stored_once(
    database_url: str, acme: int, db: Database, tmp_path: Path, how: str
) -> None:
    with running_serve(database_url, tmp_path, env={"CRMMAIL_WORKER_IDLE_POLL": "0.2"}) as serve:
        hang_up_after_the_dot(serve.port, how, db)
        send(serve.port, MAIL, [RECIPIENT])  # the sender's retry: answered 250
        wait_until(
            lambda: {status for status, _ in spool(db)} <= {"done", "ignored"},
            30,
            "the worker to process both copies",
        )
    outcomes = spool(db)
    assert sorted(outcomes, key=str) == sorted(
        [("done", None)] + [("ignored", "duplicate")] * (len(outcomes) - 1), key=str
    )
    assert len(outcomes) == 2 if how == "after-commit" else len(outcomes) in (1, 2)
    with db.read() as session:
        contacts = crm.list_contacts(session, "acme")
        notes = crm.list_notes(session, "acme")
    assert [contact["emails"] for contact in contacts] == [["bob@corp.test"]]
    assert [(note["entity_type"], note["entity_id"]) for note in notes] == [
        ("contact", contacts[0]["id"])
    ]
