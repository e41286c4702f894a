"""A small façade over IMAPClient: connect with verified TLS, log in, and the few reads we need.

Every failure leaves as one of the connector's errors: ``AuthFailed`` (the server refused the
login), ``Transient`` (network, timeouts, a server that hung up) or ``Permanent`` (certificate
refused, missing folder, a server that cannot do what IMAP4rev1 requires). Folders are always
opened read-only (EXAMINE) and bodies fetched with ``BODY.PEEK[]``, so syncing never changes
``\\Seen`` or anything else on the server.
"""

import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from crmmail.connector.endpoints import Endpoint, Security
from crmmail.connector.errors import (
    AuthFailed,
    ConnectorError,
    Permanent,
    Transient,
    transport_error,
)
from crmmail.connector.folders import Folder

BODY = b"BODY[]"
# RFC 5530 codes that make a refused LOGIN temporary: the password may well be right.
TEMPORARY_LOGIN_CODES = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]", "[SERVERBUG]", "[OVERQUOTA]")


@dataclass(frozen=True)
class FolderStatus:
    """The cheap STATUS answer that tells whether anything moved."""

    uidvalidity: int
    uidnext: int
    messages: int


@dataclass(frozen=True)
class FetchedMessage:
    """One message as fetched: its UID and raw bytes (the arrival time is asked for apart, by
    ``internal_dates``: IMAPClient's date parsing cost more than the rest of a fetch's reply)."""

    uid: int
    raw: bytes


class ImapSession:
    """A logged-in IMAP connection; use through ``imap_session``."""

    def __init__(self, client: IMAPClient, host: str) -> None:
        self._client = client
        self.host = host

    def folders(self) -> list[Folder]:
        with _errors(self.host):
            listed = self._client.list_folders()
        return [
            Folder(
                frozenset(_text(flag).lower() for flag in flags),
                _text(delimiter) if delimiter else "",
                _text(name),
            )
            for flags, delimiter, name in listed
        ]

    def status(self, folder: str) -> FolderStatus:
        with _errors(self.host):
            answer = self._client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"])
        return FolderStatus(
            int(answer[b"UIDVALIDITY"]), int(answer[b"UIDNEXT"]), int(answer[b"MESSAGES"])
        )

    def examine(self, folder: str) -> int:
        """Open ``folder`` read-only; returns its UIDVALIDITY."""
        with _errors(self.host):
            answer = self._client.select_folder(folder, readonly=True)
        return int(answer[b"UIDVALIDITY"])

    def uids(self) -> list[int]:
        """Every UID in the open folder."""
        with _errors(self.host):
            return sorted(int(uid) for uid in self._client.search("ALL"))

    def uids_since(self, day: date) -> list[int]:
        """UIDs of messages that arrived on or after ``day``."""
        with _errors(self.host):
            return sorted(int(uid) for uid in self._client.search(["SINCE", day]))

    def internal_dates(self, uids: Sequence[int]) -> dict[int, datetime]:
        """When each message arrived on the server (INTERNALDATE), in UTC; UIDs that vanished
        meanwhile, or whose date the server gave in a form that cannot be read, are left out."""
        if not uids:
            return {}
        with _errors(self.host):
            answer = self._client.fetch(list(uids), [b"INTERNALDATE"])
        arrived = {}
        for uid, data in answer.items():
            when = _utc(data.get(b"INTERNALDATE"))
            if when is not None:
                arrived[int(uid)] = when
        return arrived

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid`` (``n:*`` always matches the last message: filtered out)."""
        with _errors(self.host):
            found = self._client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(int(uid) for uid in found if int(uid) > last_uid)

    def uids_with_message_id(self, message_id: str) -> list[int]:
        with _errors(self.host):
            return sorted(
                int(uid) for uid in self._client.search(["HEADER", "Message-ID", message_id])
            )

    def fetch(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """Whole messages, without setting ``\\Seen``; UIDs that vanished meanwhile are skipped."""
        if not uids:
            return []
        with _errors(self.host):
            answer = self._client.fetch(list(uids), [b"BODY.PEEK[]"])
        fetched = []
        for uid, data in sorted(answer.items()):
            raw = data.get(BODY)
            if raw is None:
                continue
            fetched.append(FetchedMessage(int(uid), bytes(raw)))
        return fetched

    def message_ids(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The Message-ID header block of each UID (for re-mapping after a UIDVALIDITY change)."""
        if not uids:
            return {}
        field = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
        with _errors(self.host):
            answer = self._client.fetch(list(uids), [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return {int(uid): bytes(data.get(field, b"")) for uid, data in answer.items()}

    def append(self, folder: str, raw: bytes, when: datetime) -> None:
        with _errors(self.host):
            self._client.append(folder, raw, flags=[b"\\Seen"], msg_time=when)


@contextmanager
def imap_session(
    endpoint: Endpoint, username: str, password: str, context: ssl.SSLContext, timeout: float
) -> Iterator[ImapSession]:
    """Connect, secure, log in; logs out (or just closes) on the way out, whatever happened."""
    with _errors(endpoint.host):
        client = IMAPClient(
            endpoint.host,
            port=endpoint.port,
            ssl=endpoint.security is Security.SSL,
            ssl_context=context,
            timeout=timeout,
        )
        # Dates as the server wrote them, with its offset: by default IMAPClient gives naive
        # local times converted with today's offset, an hour off across a summer time change.
        client.normalise_times = False
    try:
        with _errors(endpoint.host):
            if endpoint.security is Security.STARTTLS:
                client.starttls(context)
            client.login(username, password)
        yield ImapSession(client, endpoint.host)
    finally:
        _close(client)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (IMAPClientError, OSError):
        client.shutdown()  # the server hung up or the session is broken: just drop it


@contextmanager
def _errors(host: str) -> Iterator[None]:
    """Translate what IMAPClient, ssl and sockets raise into the connector's error tree."""
    try:
        yield
    except ConnectorError:
        raise
    except LoginError as exc:
        reason = _reason(exc)
        if any(code in reason.upper() for code in TEMPORARY_LOGIN_CODES):
            raise Transient(f"{host} refused the login for now: {reason}") from exc
        raise AuthFailed(f"authentication failed at {host}: {reason}") from exc
    except OSError as exc:
        raise transport_error(host, exc) from exc
    except IMAPClientError as exc:
        message = _reason(exc)
        if "[AUTHENTICATIONFAILED]" in message.upper():
            raise AuthFailed(f"authentication failed at {host}: {message}") from exc
        if "[NONEXISTENT]" in message.upper():
            raise Permanent(f"{host} answered: {message}") from exc
        raise Transient(f"{host} answered: {message}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return " ".join(text.split())[:300] or type(exc).__name__


def _utc(value: Any) -> datetime | None:
    """An INTERNALDATE as IMAPClient read it, in UTC (``-0000`` comes without a zone: UTC)."""
    if not isinstance(value, datetime):
        return None
    try:
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    except OverflowError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
