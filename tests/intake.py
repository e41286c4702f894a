"""Test seams around the real SMTP intake: run it on loopback, build messages, send them."""

import asyncio
import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage

from crmmail.config import Settings
from crmmail.smtpd.handler import IntakeHandler
from crmmail.smtpd.refusals import RefusalObserver
from crmmail.smtpd.server import start_smtp_server
from crmmail.storage.database import Database


@contextmanager
def running_intake(
    db: Database, settings: Settings, on_refused: RefusalObserver | None = None
) -> Iterator[int]:
    """The real intake listening on 127.0.0.1 (a free port), in a thread; yields the port.

    ``on_refused`` is told every refusal's reason (from the loop's thread).
    """
    loop = asyncio.new_event_loop()
    handler = IntakeHandler(db, settings, on_refused=on_refused)
    listener = loop.run_until_complete(start_smtp_server(handler, settings, "127.0.0.1", 0))
    port = listener.address[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(listener.shut_down(grace=5), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def message(
    *,
    sender: str = "Bob Buyer <bob@corp.test>",
    to: str = "ann@example.com",
    cc: str | None = "acme@mail.localhost",
    subject: str = "Quote for 100 widgets",
    message_id: str | None = "<quote-1@corp.test>",
    body: str = "Hello, please send a quote.\n",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = cc
    mail["Subject"] = subject
    if message_id:
        mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail


def wire_bytes(mail: EmailMessage) -> bytes:
    """The message as it goes over SMTP (CRLF line ends)."""
    return mail.as_bytes(policy=policy.SMTP)


def send(
    port: int, mail: EmailMessage | bytes, rcpt: list[str], mail_from: str = "bob@corp.test"
) -> None:
    """Deliver over SMTP on loopback; raises ``smtplib`` errors on refusal."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        raw = mail if isinstance(mail, bytes) else wire_bytes(mail)
        client.sendmail(mail_from, rcpt, raw)
