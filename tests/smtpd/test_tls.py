"""STARTTLS on the intake: offered with a configured certificate, verified by clients, optional."""

import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from crmmail.config import Settings
from crmmail.errors import CrmmailError
from crmmail.smtpd.refusals import RefusalReason
from crmmail.smtpd.tls import server_tls_context
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from tests.intake import message, running_intake, wire_bytes
from tests.test_serve import crmmail_argv
from tests.tlsca import TestCA, make_test_ca


def spooled(db: Database) -> list[InboundMessage]:
    with db.transaction() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return make_test_ca(tmp_path / "ca")


def with_tls(settings: Settings, ca: TestCA) -> Settings:
    return settings.model_copy(update={"tls_cert_file": ca.cert_file, "tls_key_file": ca.key_file})


def test_starttls_with_a_verified_certificate_delivers(
    db: Database, settings: Settings, acme: int, ca: TestCA
) -> None:
    mail = message()
    with (
        running_intake(db, with_tls(settings, ca)) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
    ):
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=ca.client_context())  # verifies the chain and 127.0.0.1
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        client.ehlo()
        assert not client.has_extn("starttls")  # once is enough
        client.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(mail))
    [row] = spooled(db)
    assert row.raw == wire_bytes(mail)
    assert row.peer.startswith("127.0.0.1:")


def test_a_client_that_does_not_trust_the_certificate_cannot_start_tls(
    db: Database, settings: Settings, acme: int, ca: TestCA, tmp_path: Path
) -> None:
    stranger = make_test_ca(tmp_path / "other", name="another CA")
    refusals: list[RefusalReason] = []
    with (
        running_intake(db, with_tls(settings, ca), refusals.append) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
    ):
        client.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=stranger.client_context())
    assert spooled(db) == []
    assert refusals == [RefusalReason.TLS_HANDSHAKE]


def test_tls_is_offered_never_required(
    db: Database, settings: Settings, acme: int, ca: TestCA
) -> None:
    with (
        running_intake(db, with_tls(settings, ca)) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
    ):
        client.ehlo()
        assert client.has_extn("starttls")
        client.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    assert len(spooled(db)) == 1


def test_without_a_certificate_starttls_is_not_offered(
    db: Database, settings: Settings, acme: int
) -> None:
    with (
        running_intake(db, settings) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
    ):
        client.ehlo()
        assert not client.has_extn("starttls")
        code, _ = client.docmd("STARTTLS")
        assert code == 454  # "TLS not available" (RFC 3207)
        client.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    assert len(spooled(db)) == 1


def test_the_server_speaks_tls_1_2_or_newer_only(ca: TestCA) -> None:
    context = server_tls_context(Settings(tls_cert_file=ca.cert_file, tls_key_file=ca.key_file))
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # senders have no client certificates
    assert server_tls_context(Settings()) is None


def test_unusable_certificate_settings_are_one_clear_error(ca: TestCA, tmp_path: Path) -> None:
    other = make_test_ca(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    unreadable = tmp_path / "unreadable.key"
    shutil.copyfile(ca.key_file, unreadable)
    unreadable.chmod(0)
    cases = {
        "must be set together": {"tls_cert_file": ca.cert_file},
        "cannot read the TLS certificate": {
            "tls_cert_file": tmp_path / "missing.pem",
            "tls_key_file": ca.key_file,
        },
        "cannot be used together": {"tls_cert_file": ca.cert_file, "tls_key_file": other.key_file},
        "cannot be used together (": {"tls_cert_file": garbage, "tls_key_file": ca.key_file},
    }
    if _permissions_apply(unreadable):
        cases["cannot read the TLS key"] = {
            "tls_cert_file": ca.cert_file,
            "tls_key_file": unreadable,
        }
    for expected, files in cases.items():
        with pytest.raises(CrmmailError) as caught:
            server_tls_context(Settings(**files))
        assert expected in str(caught.value)
        assert "\n" not in str(caught.value)


def _permissions_apply(path: Path) -> bool:
    """Root reads files whatever their mode."""
    try:
        path.read_bytes()
    except PermissionError:
        return True
    return False


def test_serve_with_a_mismatched_key_says_so_in_one_line(
    database_url: str, ca: TestCA, tmp_path: Path
) -> None:
    other = make_test_ca(tmp_path / "other")
    argv = crmmail_argv(
        database_url,
        "serve",
        "--smtp-port",
        "0",
        "--tls-cert-file",
        str(ca.cert_file),
        "--tls-key-file",
        str(other.key_file),
    )
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("crmmail: error: TLS certificate ")
    assert "cannot be used together" in line
