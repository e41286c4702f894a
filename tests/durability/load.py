"""A load generator that behaves like a sending MTA: it retries every message until it gets 250.

Each of N sessions sends its own numbered messages one after another over one connection. A
connection that dies, or a reply other than 250, means "no 250": the session reconnects and sends
the same message again (same bytes, same Message-ID), as a real MTA's queue would.
"""

import smtplib
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from tests.intake import message, wire_bytes

RECIPIENT = "acme@mail.localhost"
RETRY_PAUSE = 0.1  # seconds between attempts after a failure


def numbered_message(session: int, number: int) -> tuple[str, bytes]:
    """A unique message: its Message-ID and its bytes on the wire."""
    message_id = f"<load-{session}-{number}@corp.test>"
    mail: EmailMessage = message(subject=f"load {session}-{number}", message_id=message_id)
    return message_id, wire_bytes(mail)


@dataclass
class LoadFigures:
    """What the clients saw."""

    sent: dict[str, bytes] = field(default_factory=dict)  # every message tried, by Message-ID
    accepted: set[str] = field(default_factory=set)  # Message-IDs answered 250
    failed_attempts: int = 0  # attempts cut or refused in a session (connection died, 4xx...)
    refused_connections: int = 0  # attempts that found no server listening
    replies: dict[int, int] = field(default_factory=dict)  # SMTP codes other than 250 seen
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_failure(self, code: int | None = None) -> None:
        with self.lock:
            self.failed_attempts += 1
            if code is not None:
                self.replies[code] = self.replies.get(code, 0) + 1


class LoadGenerator:
    """``sessions`` client threads sending until ``stop_new`` is set, then retrying what is left."""

    def __init__(self, port: int, sessions: int) -> None:
        self.port = port
        self.figures = LoadFigures()
        self.stop_new = threading.Event()
        self.give_up = threading.Event()
        self._threads = [
            threading.Thread(target=self._session, args=(number,), name=f"load-{number}")
            for number in range(sessions)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self, deadline_s: float) -> bool:
        """Stop starting new messages, wait for the pending ones; ``False`` if some got no 250."""
        self.stop_new.set()
        deadline = time.monotonic() + deadline_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.give_up.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.figures.accepted == set(self.figures.sent)

    def _session(self, session: int) -> None:
        client: smtplib.SMTP | None = None
        number = 0
        while not self.stop_new.is_set():
            message_id, raw = numbered_message(session, number)
            with self.figures.lock:
                self.figures.sent[message_id] = raw
            client = self._deliver(client, message_id, raw)
            number += 1
        if client is not None:
            client.close()

    def _deliver(
        self, client: smtplib.SMTP | None, message_id: str, raw: bytes
    ) -> smtplib.SMTP | None:
        """Send one message until it is answered 250 (or the run gives up); the connection."""
        while not self.give_up.is_set():
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            except ConnectionRefusedError:
                with self.figures.lock:
                    self.figures.refused_connections += 1
                time.sleep(RETRY_PAUSE)
                continue
            except (OSError, smtplib.SMTPException):
                self.figures.record_failure()
                time.sleep(RETRY_PAUSE)
                continue
            try:
                client.sendmail("bob@corp.test", [RECIPIENT], raw)
            except smtplib.SMTPResponseException as error:  # 4xx/5xx (or a 421 greeting)
                self.figures.record_failure(error.smtp_code)
            except smtplib.SMTPRecipientsRefused as error:
                [(code, _)] = error.recipients.values()
                self.figures.record_failure(code)
            except (OSError, smtplib.SMTPException):  # the server died under us
                self.figures.record_failure()
            else:
                with self.figures.lock:
                    self.figures.accepted.add(message_id)
                return client
            if client is not None:
                client.close()
                client = None
            time.sleep(RETRY_PAUSE)
        return client
