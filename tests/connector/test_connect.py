"""Connecting a mailbox: verified against the real servers before anything is stored."""

import time

import pytest
from sqlalchemy import select

from crmmail.connector.credentials import SecretUnreadable, load_key_ring
from crmmail.errors import AlreadyExists, UserInputError
from crmmail.services import mailboxes
from crmmail.storage.models import Mailbox, MailboxCredential
from tests.connector.conftest import PostOffice
from tests.dnsstub import running_dns
from tests.tlsca import make_test_ca


def _stored(post: PostOffice) -> list[Mailbox]:
    with post.db.read() as session:
        return list(session.scalars(select(Mailbox)))


def test_connect_stores_the_box_and_lists_it_without_secrets(post: PostOffice) -> None:
    box = post.connect()

    listed = post.mailboxes()
    assert listed == [
        {
            "id": box["id"],
            "email": post.email,
            "kind": "personal",
            "owner": post.email,
            "status": "importing",
            "last_sync_at": None,
            "last_error": None,
        }
    ]
    assert post.password not in repr(listed)


def test_the_password_is_sealed_with_a_named_key(post: PostOffice) -> None:
    box = post.connect()

    with post.db.read() as session:
        credential = session.get(MailboxCredential, box["id"])
        assert credential is not None
        assert post.password.encode() not in credential.secret
        from crmmail.connector.credentials import Sealed

        sealed = Sealed(credential.key_id, credential.secret)
    keys = load_key_ring(post.settings)
    assert keys.open(sealed, f"mailbox:{box['id']}") == post.password
    with pytest.raises(SecretUnreadable):  # copied onto another box, it does not open
        keys.open(sealed, f"mailbox:{box['id'] + 1}")


def test_wrong_password_stores_nothing(post: PostOffice) -> None:
    with pytest.raises(UserInputError, match=r"authentication failed.*nothing was saved"):
        post.connect(password="wrong")
    assert _stored(post) == []


def test_smtp_password_checked_too(post: PostOffice) -> None:
    post.submission.users[post.email] = "another"
    with pytest.raises(UserInputError, match="authentication failed at localhost"):
        post.connect()
    assert _stored(post) == []


def test_a_certificate_from_an_unknown_ca_is_refused(post: PostOffice, tmp_path) -> None:  # type: ignore[no-untyped-def]
    post.settings = post.settings.model_copy(
        update={"tls_ca_file": make_test_ca(tmp_path, "someone else").ca_file}
    )
    with pytest.raises(UserInputError, match="certificate of localhost could not be verified"):
        post.connect()
    assert _stored(post) == []


def test_starttls_ports_work(post: PostOffice) -> None:
    box = post.connect(
        imap=mailboxes.HostChoice(post.dovecot.host, post.dovecot.starttls_port, "starttls")
    )
    assert post.sync(box["id"]).status == "active"


def _imap_connections(post: PostOffice) -> int:
    return post.dovecot.log_text().count("imap-login:")


def test_loopback_servers_refused_unless_allowed(post: PostOffice) -> None:
    post.settings = post.settings.model_copy(update={"allow_private_mail_hosts": False})
    before = _imap_connections(post)
    with pytest.raises(UserInputError, match="loopback"):
        post.connect()
    assert _stored(post) == []
    assert _imap_connections(post) == before  # refused before any connection


def test_ip_address_hosts_refused(post: PostOffice) -> None:
    before = _imap_connections(post)
    with pytest.raises(UserInputError, match="IP address"):
        post.connect(imap=mailboxes.HostChoice("127.0.0.1", post.dovecot.ssl_port, "ssl"))
    assert _imap_connections(post) == before


def test_the_connection_count_sees_a_connection(post: PostOffice) -> None:
    before = _imap_connections(post)
    with pytest.raises(UserInputError, match="authentication failed"):
        post.connect(password="wrong")
    # Dovecot's log process writes the line a moment after the login is refused: wait for it.
    deadline = time.monotonic() + 10
    while _imap_connections(post) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _imap_connections(post) > before


def test_a_smart_address_cannot_be_connected(post: PostOffice) -> None:
    with pytest.raises(UserInputError, match="smart address"):
        post.connect(email="acme@mail.localhost")


def test_only_admins_connect_shared_boxes(post: PostOffice) -> None:
    with pytest.raises(UserInputError, match="only admins connect shared mailboxes"):
        post.connect(shared=True)
    box = post.connect(shared=True, user_email="me@acme.test")
    assert box["kind"] == "shared" and box["owner"] == "me@acme.test"


def test_a_box_is_connected_once(post: PostOffice) -> None:
    post.connect()
    with pytest.raises(AlreadyExists):
        post.connect()


def test_a_missing_sent_folder_override_is_refused(post: PostOffice) -> None:
    with pytest.raises(UserInputError, match="no folder named 'Nope'"):
        post.connect(sent_folder="Nope")
    assert _stored(post) == []


def test_both_hosts_or_neither(post: PostOffice) -> None:
    with pytest.raises(UserInputError, match="give both --imap-host and --smtp-host"):
        post.connect(smtp=mailboxes.HostChoice())


def test_new_password_restarts_a_box_that_failed_authentication(post: PostOffice) -> None:
    box = post.connect()
    post.dovecot.set_password(post.email, "rotated")

    failed = post.sync(box["id"])

    assert failed.status == "auth_failed"
    [listed] = post.mailboxes()
    assert listed["status"] == "auth_failed" and "authentication failed" in listed["last_error"]
    assert post.scheduler().run_until_idle() == []  # not retried on its own
    with pytest.raises(UserInputError, match="authentication failed"):
        mailboxes.change_password(post.db, post.settings, box["id"], "still wrong")
    post.submission.users[post.email] = "rotated"

    changed = mailboxes.change_password(post.db, post.settings, box["id"], "rotated")

    assert changed["status"] == "importing" and changed["last_error"] is None
    [result] = post.scheduler().run_until_idle()
    assert result.status == "active"


def test_servers_discovered_by_srv_records_are_verified_and_stored(post: PostOffice) -> None:
    domain = post.email.partition("@")[2]
    records = {
        (f"_imaps._tcp.{domain}", "SRV"): [f"0 1 {post.dovecot.ssl_port} localhost."],
        (f"_submissions._tcp.{domain}", "SRV"): [f"0 1 {post.submission.port} localhost."],
    }
    with running_dns(records) as dns:
        post.settings = post.settings.model_copy(
            update={"dns_servers": (dns.address,), "autoconfig_urls": ()}
        )
        box = post.connect(imap=mailboxes.HostChoice(), smtp=mailboxes.HostChoice())

    assert box["source"] == "srv"
    [stored] = _stored(post)
    assert (stored.imap_host, stored.imap_port, stored.imap_security) == (
        "localhost",
        post.dovecot.ssl_port,
        "ssl",
    )
    assert (stored.smtp_port, stored.smtp_security) == (post.submission.port, "ssl")
    assert post.sync(box["id"]).status == "active"
