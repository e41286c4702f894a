"""The mail server fixtures work: real Dovecot and aiosmtpd on loopback, trusted via a test CA."""

import smtplib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.dovecot import Dovecot, running_dovecot
from tests.submission import ReceivedMessage, Submission, running_submission
from tests.tlsca import TestCA, make_test_ca

ANN = "ann@example.test"
ANN_PASSWORD = "ann-secret"
MESSAGE = b"From: ann@example.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi Bob\r\n"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("stranger-ca"), name="someone else's CA")


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory, ca: TestCA) -> Iterator[Dovecot]:
    with running_dovecot(tmp_path_factory.mktemp("dovecot"), ca) as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot, request: pytest.FixtureRequest) -> str:
    """A fresh Dovecot user per test, so tests do not see each other's mailboxes."""
    email = f"{request.node.name.replace('[', '-').rstrip(']')}@example.test"
    dovecot.add_user(email, ANN_PASSWORD)
    return email


def _imap_over_ssl(dovecot: Dovecot, context: ssl.SSLContext) -> IMAPClient:
    return IMAPClient(dovecot.host, dovecot.ssl_port, ssl=True, ssl_context=context, timeout=5)


def test_login_over_implicit_tls(dovecot: Dovecot, ca: TestCA, user: str) -> None:
    with _imap_over_ssl(dovecot, ca.client_context()) as client:
        client.login(user, ANN_PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_login_over_starttls(dovecot: Dovecot, ca: TestCA, user: str) -> None:
    with IMAPClient(dovecot.host, dovecot.starttls_port, ssl=False, timeout=5) as client:
        assert b"LOGINDISABLED" in client.capabilities()
        client.starttls(ca.client_context())
        client.login(user, ANN_PASSWORD)


def test_starttls_port_refuses_login_before_starttls(dovecot: Dovecot, user: str) -> None:
    with (
        IMAPClient(dovecot.host, dovecot.starttls_port, ssl=False, timeout=5) as client,
        pytest.raises(LoginError),
    ):
        client.login(user, ANN_PASSWORD)


def test_wrong_password_fails_and_password_can_change(
    dovecot: Dovecot, ca: TestCA, user: str
) -> None:
    with _imap_over_ssl(dovecot, ca.client_context()) as client, pytest.raises(LoginError):
        client.login(user, "wrong")
    dovecot.set_password(user, "new-secret")
    with _imap_over_ssl(dovecot, ca.client_context()) as client:
        with pytest.raises(LoginError):
            client.login(user, ANN_PASSWORD)
        client.login(user, "new-secret")


def test_certificate_from_unknown_ca_is_refused(dovecot: Dovecot, stranger_ca: TestCA) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _imap_over_ssl(dovecot, stranger_ca.client_context())


def test_append_returns_uids_and_flags_show_seen(dovecot: Dovecot, user: str) -> None:
    dovecot.create_mailbox(user, "Sent")
    first = dovecot.append(user, "Sent", MESSAGE, flags=[b"\\Seen"])
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    rest = dovecot.append_many(user, "Sent", [MESSAGE] * 500, internal_dates=[when] * 500)
    assert rest == list(range(first + 1, first + 501))
    flags = dovecot.flags(user, "Sent")
    assert b"\\Seen" in flags[first]
    assert b"\\Seen" not in flags[rest[-1]]
    dovecot.expunge(user, "Sent", rest[:10])
    assert dovecot.status(user, "Sent")[b"MESSAGES"] == 491


def test_sent_has_special_use_once_created(dovecot: Dovecot, user: str) -> None:
    with dovecot.login(user) as client:
        assert [name for _, _, name in client.list_folders()] == ["INBOX"]
    dovecot.create_mailbox(user, "Sent")
    dovecot.create_mailbox(user, "Sent Items")
    with dovecot.login(user) as client:
        flags = {name: folder_flags for folder_flags, _, name in client.list_folders()}
    assert b"\\Sent" in flags["Sent"]
    assert b"\\Sent" not in flags["Sent Items"]


def test_special_use_names_are_per_instance(tmp_path: Path, ca: TestCA) -> None:
    with running_dovecot(tmp_path, ca, special_use={"Gesendet": "\\Sent"}) as server:
        server.add_user(ANN, ANN_PASSWORD)
        server.create_mailbox(ANN, "Gesendet")
        with server.login(ANN) as client:
            assert client.find_special_folder(b"\\Sent") == "Gesendet"


def test_set_uidvalidity_changes_status(dovecot: Dovecot, user: str) -> None:
    dovecot.append(user, "INBOX", MESSAGE)
    before = dovecot.status(user, "INBOX")[b"UIDVALIDITY"]
    dovecot.set_uidvalidity(user, "INBOX", before + 7)
    assert dovecot.status(user, "INBOX")[b"UIDVALIDITY"] == before + 7
    with dovecot.login(user) as client:
        assert client.select_folder("INBOX")[b"UIDVALIDITY"] == before + 7


def test_connections_counts_open_sessions(dovecot: Dovecot, user: str) -> None:
    with dovecot.login(user), dovecot.login(user):
        assert dovecot.connections(user) == 2


def _send(server: Submission, ca: TestCA, login: str, password: str) -> None:
    context = ca.client_context()
    if server.implicit_tls:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port)
    with smtp:
        if not server.implicit_tls:
            smtp.starttls(context=context)
        smtp.login(login, password)
        smtp.sendmail(ANN, ["bob@example.test"], MESSAGE)


@pytest.mark.parametrize("implicit_tls", [True, False], ids=["implicit-tls", "starttls"])
def test_submission_accepts_authenticated_mail(ca: TestCA, implicit_tls: bool) -> None:
    with running_submission(ca, {ANN: ANN_PASSWORD}, implicit_tls) as server:
        _send(server, ca, ANN, ANN_PASSWORD)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _send(server, ca, ANN, "wrong")
    assert server.messages == [ReceivedMessage(ANN, ("bob@example.test",), MESSAGE, ANN)]


@pytest.mark.parametrize("implicit_tls", [True, False], ids=["implicit-tls", "starttls"])
def test_submission_refuses_mail_without_auth(ca: TestCA, implicit_tls: bool) -> None:
    with running_submission(ca, {ANN: ANN_PASSWORD}, implicit_tls) as server:
        context = ca.client_context()
        if implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port)
        with smtp, pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail(ANN, ["bob@example.test"], MESSAGE)
    assert server.messages == []


def test_submission_login_needs_starttls(ca: TestCA) -> None:
    with (
        running_submission(ca, {ANN: ANN_PASSWORD}, implicit_tls=False) as server,
        smtplib.SMTP(server.host, server.port) as smtp,
        pytest.raises(smtplib.SMTPNotSupportedError),
    ):
        smtp.login(ANN, ANN_PASSWORD)


def test_submission_refuses_unknown_ca(ca: TestCA, stranger_ca: TestCA) -> None:
    with (
        running_submission(ca, {ANN: ANN_PASSWORD}, implicit_tls=True) as server,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        smtplib.SMTP_SSL(server.host, server.port, context=stranger_ca.client_context())


def test_sent_copy_lands_in_dovecot_before_smtp_returns(
    ca: TestCA, dovecot: Dovecot, user: str
) -> None:
    dovecot.create_mailbox(user, "Sent")

    def file_in_sent(login: str, raw: bytes) -> None:
        dovecot.append(login, "Sent", raw, flags=[b"\\Seen"])

    with running_submission(ca, {user: ANN_PASSWORD}, True, sent_copy=file_in_sent) as server:
        _send(server, ca, user, ANN_PASSWORD)
        assert list(dovecot.flags(user, "Sent").values()) == [(b"\\Seen",)]
