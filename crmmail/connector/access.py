"""Reach a box: open its sealed password, and prove settings work by logging in to both servers."""

from dataclasses import dataclass, field

from crmmail.config import Settings
from crmmail.connector.credentials import KeyRing, Sealed
from crmmail.connector.endpoints import Endpoint, Security, ServerSettings
from crmmail.connector.errors import Permanent
from crmmail.connector.folders import find_sent
from crmmail.connector.imap import imap_session
from crmmail.connector.smtp import verify_login
from crmmail.connector.tls import client_context
from crmmail.storage.models import Mailbox, MailboxCredential


@dataclass(frozen=True)
class MailboxAccess:
    """What a sync needs to reach a box, read once so no session stays open during I/O."""

    id: int
    account_id: int
    email: str
    username: str
    password: str = field(repr=False)
    imap: Endpoint
    smtp: Endpoint
    sent_folder: str | None

    @property
    def server(self) -> ServerSettings:
        return ServerSettings(self.imap, self.smtp, "stored")


def secret_owner(mailbox_id: int) -> str:
    """Whom a box's sealed password belongs to."""
    return f"mailbox:{mailbox_id}"


def server_settings(mailbox: Mailbox) -> ServerSettings:
    """The endpoints stored on a box."""
    return ServerSettings(
        imap=Endpoint(mailbox.imap_host, mailbox.imap_port, Security(mailbox.imap_security)),
        smtp=Endpoint(mailbox.smtp_host, mailbox.smtp_port, Security(mailbox.smtp_security)),
        source="stored",
    )


def mailbox_access(mailbox: Mailbox, credential: MailboxCredential, keys: KeyRing) -> MailboxAccess:
    """A snapshot with the opened password, for use outside the transaction that read it."""
    server = server_settings(mailbox)
    return MailboxAccess(
        id=mailbox.id,
        account_id=mailbox.account_id,
        email=mailbox.email,
        username=mailbox.username,
        password=keys.open(Sealed(credential.key_id, credential.secret), secret_owner(mailbox.id)),
        imap=server.imap,
        smtp=server.smtp,
        sent_folder=mailbox.sent_folder,
    )


def verify(
    server: ServerSettings,
    username: str,
    password: str,
    settings: Settings,
    sent_folder: str | None = None,
) -> None:
    """IMAP login (and the Sent folder, if one was named) then SMTP AUTH, TLS verified."""
    context = client_context(settings)
    with imap_session(server.imap, username, password, context, settings.mail_timeout) as imap:
        if sent_folder is not None and find_sent(imap.folders(), sent_folder) is None:
            raise Permanent(f"the mailbox has no folder named {sent_folder!r}")
    verify_login(server.smtp, username, password, context, settings.mail_timeout)
