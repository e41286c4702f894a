"""Sender authentication in the worker: SPF, DKIM and DMARC against DNS served on loopback.

Messages are signed with a test RSA key (dkimpy), the key, SPF and DMARC records are served by
the DNS stub, and each message goes through the real spool and worker with the client address
the SMTP intake would have recorded.
"""

import base64
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crmmail.cli import cli as crmmail_cli
from crmmail.config import Settings
from crmmail.connector.capture import Destination, Incoming, Placement, capture
from crmmail.processor.steps.authenticate import forged_results
from crmmail.processor.worker import Worker
from crmmail.sender_auth.results import summary
from crmmail.services import accounts, crm
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage, Mailbox
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from crmmail.storage.repositories.mailboxes import MailboxRepository
from tests.dnsstub import SERVFAIL, DnsStub, running_dns
from tests.intake import message, wire_bytes

CONTACT = "acme+contact@mail.localhost"
AUTHSERV_ID = "crmmail.localhost"  # Settings.smtp_hostname's default
DOMAIN = "corp.test"
SELECTOR = "sel"
GOOD_IP = "192.0.2.10"
OTHER_IP = "198.51.100.7"


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    dns_record: str  # the TXT record in presentation form (split into 200-character strings)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    chunks = [text[i : i + 200] for i in range(0, len(text), 200)]
    return SigningKey(pem, " ".join(f'"{chunk}"' for chunk in chunks))


def records(key: SigningKey, **changes: str | None) -> dict[tuple[str, str], list[str]]:
    """corp.test with SPF (192.0.2.0/24), DMARC p=reject and the DKIM key; ``changes`` by name:
    spf, dmarc, dkim (a record text, or None to leave it out)."""
    texts: dict[str, str | None] = {
        "spf": "v=spf1 ip4:192.0.2.0/24 -all",
        "dmarc": "v=DMARC1; p=reject",
        "dkim": key.dns_record,
    }
    texts.update(changes)
    table: dict[tuple[str, str], list[str]] = {
        ("esp.test", "TXT"): ['"v=spf1 ip4:198.51.100.0/24 -all"'],
        ("mx.corp.test", "A"): [GOOD_IP],
    }
    if texts["spf"] is not None:
        table[DOMAIN, "TXT"] = [f'"{texts["spf"]}"']
    if texts["dmarc"] is not None:
        table[f"_dmarc.{DOMAIN}", "TXT"] = [f'"{texts["dmarc"]}"']
    if texts["dkim"] is not None:
        record = texts["dkim"]
        table[f"{SELECTOR}._domainkey.{DOMAIN}", "TXT"] = [
            record if record.startswith('"') else f'"{record}"'
        ]
    return table


def signed(raw: bytes, key: SigningKey, domain: str = DOMAIN) -> bytes:
    signature = dkim.sign(
        raw,
        SELECTOR.encode(),
        domain.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"cc", b"subject", b"message-id"],
    )
    return bytes(signature) + raw


def mail(sender: str = f"Bob <bob@{DOMAIN}>", **kwargs: Any) -> bytes:
    return wire_bytes(message(sender=sender, cc=CONTACT, **kwargs))


@dataclass
class Checked:
    """One message after the worker: its spool row and what it made."""

    status: str
    reason: str | None
    results: str | None
    disposition: str | None
    notes: list[dict[str, Any]]
    contacts: list[str]

    @property
    def verdict(self) -> dict[str, str]:
        assert self.results is not None
        return summary(self.results)


class Receiver:
    """The spool and a worker with DNS at a given server."""

    def __init__(self, db: Database, settings: Settings, account_id: int) -> None:
        self.db = db
        self.settings = settings
        self.account_id = account_id

    def set_policy(self, policy: str) -> None:
        with self.db.transaction() as session:
            accounts.set_dmarc_policy(session, "acme", policy)

    def receive(
        self,
        raw: bytes,
        dns_server: str,
        *,
        peer: str = f"{GOOD_IP}:40125",
        helo: str = "mx.corp.test",
        mail_from: str = f"bob@{DOMAIN}",
    ) -> Checked:
        entry = SpoolEntry(self.account_id, peer, helo, mail_from, [CONTACT], raw)
        with self.db.transaction() as session:
            [inbound_id] = InboundRepository(session).spool([entry])
        settings = self.settings.model_copy(update={"dns_servers": (dns_server,)})
        Worker(self.db, settings).run_until_idle()
        with self.db.transaction() as session:
            row = session.get(InboundMessage, inbound_id)
            assert row is not None
            notes = [n for n in crm.list_notes(session, "acme") if n["inbound_id"] == inbound_id]
            contacts = [e for c in crm.list_contacts(session, "acme") for e in c["emails"]]
            return Checked(
                row.status, row.reason, row.auth_results, row.auth_disposition, notes, contacts
            )


@pytest.fixture
def receiver(db: Database, settings: Settings, acme: int) -> Receiver:
    return Receiver(db, settings, acme)


@pytest.fixture
def dns_down() -> Iterator[str]:
    """A loopback address where no DNS server listens (queries are refused at once)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"127.0.0.1:{port}"


# -- SPF --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spf", "ip", "expected"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", GOOD_IP, "pass"),
        ("v=spf1 ip4:192.0.2.0/24 -all", OTHER_IP, "fail"),
        ("v=spf1 ip4:192.0.2.0/24 ~all", OTHER_IP, "softfail"),
        ("v=spf1 a:mx.corp.test -all", GOOD_IP, "pass"),  # an A lookup through our resolver
        (None, GOOD_IP, "none"),
    ],
)
def test_spf_is_checked_for_the_client_address(
    receiver: Receiver, key: SigningKey, spf: str | None, ip: str, expected: str
) -> None:
    with running_dns(records(key, spf=spf, dmarc=None)) as dns:
        checked = receiver.receive(mail(), dns.address, peer=f"{ip}:40125")
    assert checked.verdict["spf"] == expected
    assert f"spf={expected} smtp.mailfrom=bob@corp.test" in (checked.results or "")
    assert checked.status == "done"


def test_a_bounce_is_ignored_before_any_dns_is_asked(receiver: Receiver, key: SigningKey) -> None:
    table = records(key, dmarc=None) | {("mx.corp.test", "TXT"): ['"v=spf1 a -all"']}
    with running_dns(table) as dns:
        checked = receiver.receive(mail(), dns.address, mail_from="")
    # A null reverse-path is a bounce: classify ignores it before any DNS is asked.
    assert (checked.status, checked.reason, checked.results) == ("ignored", "bounce", None)
    assert dns.queries == []


# -- DKIM -------------------------------------------------------------------------------------


def test_a_good_signature_passes(receiver: Receiver, key: SigningKey) -> None:
    with running_dns(records(key, dmarc=None)) as dns:
        checked = receiver.receive(signed(mail(), key), dns.address)
    assert checked.verdict["dkim"] == "pass"
    assert "dkim=pass header.d=corp.test header.s=sel" in (checked.results or "")
    assert (f"{SELECTOR}._domainkey.{DOMAIN}", "TXT") in dns.queries


def test_a_body_altered_after_signing_fails(receiver: Receiver, key: SigningKey) -> None:
    raw = signed(mail(body="Please quote 100 widgets.\n"), key)
    raw = raw.replace(b"100 widgets", b"900 widgets")
    with running_dns(records(key, dmarc=None)) as dns:
        checked = receiver.receive(raw, dns.address)
    assert checked.verdict["dkim"] == "fail"


def test_a_signature_whose_key_is_not_published_does_not_pass(
    receiver: Receiver, key: SigningKey
) -> None:
    with running_dns(records(key, dmarc=None, dkim=None)) as dns:
        checked = receiver.receive(signed(mail(), key), dns.address)
    assert checked.verdict["dkim"] in ("fail", "permerror")


def test_an_unsigned_message_has_no_dkim_result(receiver: Receiver, key: SigningKey) -> None:
    with running_dns(records(key, dmarc=None)) as dns:
        checked = receiver.receive(mail(), dns.address)
    assert checked.verdict["dkim"] == "none"


# -- DMARC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "ip", "mail_from", "sign_as", "dmarc", "expected"),
    [
        ("aligned SPF alone", GOOD_IP, "bob@corp.test", None, "v=DMARC1; p=reject", "pass"),
        ("aligned DKIM alone", OTHER_IP, "bob@corp.test", DOMAIN, "v=DMARC1; p=reject", "pass"),
        ("SPF of another domain", OTHER_IP, "b@esp.test", None, "v=DMARC1; p=reject", "fail"),
        (
            "DKIM of another domain",
            OTHER_IP,
            "b@esp.test",
            "esp.test",
            "v=DMARC1; p=reject",
            "fail",
        ),
        ("no SPF, no DKIM", OTHER_IP, "bob@corp.test", None, "v=DMARC1; p=reject", "fail"),
        ("no record", OTHER_IP, "b@esp.test", None, None, "none"),
        (
            "strict SPF, subdomain",
            GOOD_IP,
            "bob@mx.corp.test",
            None,
            "v=DMARC1; p=reject; aspf=s",
            "fail",
        ),
        ("relaxed SPF, subdomain", GOOD_IP, "bob@mx.corp.test", None, "v=DMARC1; p=reject", "pass"),
    ],
)
def test_dmarc_needs_an_aligned_pass(
    receiver: Receiver,
    key: SigningKey,
    case: str,
    ip: str,
    mail_from: str,
    sign_as: str | None,
    dmarc: str | None,
    expected: str,
) -> None:
    receiver.set_policy("accept")
    raw = mail() if sign_as is None else signed(mail(), key, sign_as)
    table = records(key, dmarc=dmarc)
    table[("mx.corp.test", "TXT")] = ['"v=spf1 ip4:192.0.2.0/24 -all"']
    table[(f"{SELECTOR}._domainkey.esp.test", "TXT")] = [key.dns_record]
    with running_dns(table) as dns:
        checked = receiver.receive(raw, dns.address, peer=f"{ip}:1", mail_from=mail_from)
    assert checked.verdict["dmarc"] == expected, (case, checked.results)
    if dmarc is not None:
        assert "(p=reject) header.from=corp.test" in (checked.results or "")


def test_a_subdomain_takes_the_organizational_domain_s_policy(
    receiver: Receiver, key: SigningKey
) -> None:
    receiver.set_policy("quarantine")
    table = records(key, dmarc="v=DMARC1; p=none; sp=reject")
    with running_dns(table) as dns:
        checked = receiver.receive(
            mail(sender="Bob <bob@news.corp.test>"), dns.address, peer=f"{OTHER_IP}:1"
        )
    assert ("_dmarc.news.corp.test", "TXT") in dns.queries
    assert ("_dmarc.corp.test", "TXT") in dns.queries
    assert "dmarc=fail (p=reject) header.from=news.corp.test" in (checked.results or "")
    assert (checked.status, checked.reason) == ("ignored", "dmarc_fail")


def test_dns_down_gives_temperror_and_the_message_is_processed(
    receiver: Receiver, key: SigningKey, dns_down: str
) -> None:
    receiver.set_policy("quarantine")
    checked = receiver.receive(signed(mail(), key), dns_down)
    assert checked.verdict == {"spf": "temperror", "dkim": "temperror", "dmarc": "temperror"}
    assert (checked.status, checked.reason, checked.disposition) == ("done", None, None)
    assert checked.notes and checked.notes[0]["auth"]["dmarc"] == "temperror"
    assert "bob@corp.test" in checked.contacts


def test_a_dns_failure_on_the_aligned_signature_is_temperror_not_fail(
    receiver: Receiver, key: SigningKey
) -> None:
    receiver.set_policy("quarantine")
    table = records(key, dkim=None)
    table[f"{SELECTOR}._domainkey.{DOMAIN}", "TXT"] = [SERVFAIL]
    with running_dns(table) as dns:  # SPF fails (another client); the key cannot be read
        checked = receiver.receive(signed(mail(), key), dns.address, peer=f"{OTHER_IP}:1")
    assert checked.verdict == {"spf": "fail", "dkim": "temperror", "dmarc": "temperror"}
    assert (checked.status, checked.disposition) == ("done", None)


def test_every_from_domain_is_evaluated(receiver: Receiver, key: SigningKey) -> None:
    receiver.set_policy("quarantine")
    sender = "Bob <bob@esp.test>, The CEO <ceo@corp.test>"
    with running_dns(records(key)) as dns:  # esp.test: SPF passes, no DMARC record
        checked = receiver.receive(
            mail(sender=sender), dns.address, peer=f"{OTHER_IP}:1", mail_from="bob@esp.test"
        )
    assert checked.verdict == {"spf": "pass", "dkim": "none", "dmarc": "fail"}
    assert "header.from=corp.test" in (checked.results or "")
    assert (checked.status, checked.reason) == ("ignored", "dmarc_fail")


def test_results_smuggled_in_a_quoted_mail_from_are_not_read(
    receiver: Receiver, key: SigningKey
) -> None:
    smuggled = '"x;dmarc=pass;dkim=pass"@corp.test'
    with running_dns(records(key)) as dns:
        checked = receiver.receive(mail(), dns.address, peer=f"{OTHER_IP}:1", mail_from=smuggled)
    assert checked.results is not None and "dmarc=pass" in checked.results  # quoted, inert
    assert checked.verdict == {"spf": "fail", "dkim": "none", "dmarc": "fail"}
    assert {note["auth"]["dmarc"] for note in checked.notes} == {"fail"}


# -- the account's policy on DMARC failure ---------------------------------------------------


def forged_from_elsewhere(receiver: Receiver, key: SigningKey, policy: str | None) -> Checked:
    """corp.test mail (p=reject) from a client SPF does not allow and without a signature."""
    if policy is not None:
        receiver.set_policy(policy)
    with running_dns(records(key)) as dns:
        return receiver.receive(mail(), dns.address, peer=f"{OTHER_IP}:1")


def test_accept_processes_a_dmarc_failure_like_any_mail(
    receiver: Receiver, key: SigningKey
) -> None:
    checked = forged_from_elsewhere(receiver, key, "accept")
    assert (checked.status, checked.disposition) == ("done", "accept")
    assert "bob@corp.test" in checked.contacts
    assert {note["auth"]["tagged"] for note in checked.notes} == {False}
    assert {note["auth"]["dmarc"] for note in checked.notes} == {"fail"}


def test_tag_is_the_default_and_shows_the_failure_on_the_notes(
    receiver: Receiver, key: SigningKey
) -> None:
    checked = forged_from_elsewhere(receiver, key, None)
    assert (checked.status, checked.disposition) == ("done", "tag")
    assert "bob@corp.test" in checked.contacts
    [auth] = {json.dumps(note["auth"], sort_keys=True) for note in checked.notes}
    assert json.loads(auth) == {
        "spf": "fail",
        "dkim": "none",
        "dmarc": "fail",
        "tagged": True,
        "dmarc_policy": "tag",
        "results": f"{AUTHSERV_ID}; spf=fail smtp.mailfrom=bob@corp.test; dkim=none; "
        "dmarc=fail (p=reject) header.from=corp.test",
    }


def test_quarantine_acts_on_nothing_and_keeps_the_message(
    receiver: Receiver, key: SigningKey
) -> None:
    checked = forged_from_elsewhere(receiver, key, "quarantine")
    assert (checked.status, checked.reason, checked.disposition) == (
        "ignored",
        "dmarc_fail",
        "quarantine",
    )
    assert (checked.notes, checked.contacts) == ([], [])
    assert "dmarc=fail" in (checked.results or "")


def test_quarantine_lets_mail_that_passes_through(receiver: Receiver, key: SigningKey) -> None:
    receiver.set_policy("quarantine")
    with running_dns(records(key)) as dns:
        checked = receiver.receive(signed(mail(), key), dns.address, peer=f"{OTHER_IP}:1")
    assert (checked.status, checked.disposition) == ("done", None)
    assert checked.verdict == {"spf": "fail", "dkim": "pass", "dmarc": "pass"}


def test_a_domain_asking_for_no_action_is_tagged_not_quarantined(
    receiver: Receiver, key: SigningKey
) -> None:
    receiver.set_policy("quarantine")
    with running_dns(records(key, dmarc="v=DMARC1; p=none")) as dns:
        checked = receiver.receive(mail(), dns.address, peer=f"{OTHER_IP}:1")
    assert (checked.status, checked.disposition) == ("done", "tag")


# -- forged results and trusted clients -------------------------------------------------------


def test_forged_results_claiming_our_id_are_not_trusted(
    receiver: Receiver, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "crmmail.processor.steps.authenticate")
    receiver.set_policy("quarantine")
    forged = {
        "Authentication-Results": f"{AUTHSERV_ID}; spf=pass; dkim=pass header.d=corp.test; "
        "dmarc=pass header.from=corp.test"
    }
    raw = mail(headers=forged)
    assert forged_results(raw, AUTHSERV_ID) == 1
    with running_dns(records(key)) as dns:
        checked = receiver.receive(raw, dns.address, peer=f"{OTHER_IP}:1")
    assert (checked.status, checked.reason) == ("ignored", "dmarc_fail")
    assert checked.verdict == {"spf": "fail", "dkim": "none", "dmarc": "fail"}
    assert checked.results is not None and checked.results.count(AUTHSERV_ID) == 1
    assert "1 forged Authentication-Results claiming crmmail.localhost ignored" in caplog.text


def test_forged_results_are_told_from_other_servers_results() -> None:
    raw = (
        b"Authentication-Results: (comment) CRMMAIL.localhost;\r\n spf=pass\r\n"
        b"Authentication-Results: mx.google.com; spf=pass\r\n"
        b"X-Note: Authentication-Results: crmmail.localhost; dkim=pass\r\n"
        b"authentication-results:crmmail.localhost; dmarc=pass\r\n"
        b"\r\n"
        b"Authentication-Results: crmmail.localhost; in the body\r\n"
    )
    assert forged_results(raw, AUTHSERV_ID) == 2
    assert forged_results(raw, "mx.google.com") == 1


def test_mail_from_a_trusted_network_is_not_checked(receiver: Receiver, key: SigningKey) -> None:
    with running_dns(records(key)) as dns:
        checked = receiver.receive(mail(), dns.address, peer="127.0.0.1:40125")
        assert dns.queries == []
    assert (checked.status, checked.results) == ("done", None)
    assert {note["auth"] for note in checked.notes} == {None}


def test_notes_of_synced_mail_have_no_auth(receiver: Receiver, key: SigningKey) -> None:
    with running_dns(records(key)) as dns:
        received = receiver.receive(mail(message_id="<smart@corp.test>"), dns.address)
    with receiver.db.transaction() as session:
        owner = AccountRepository(session).user_by_email(receiver.account_id, "me@acme.test")
        assert owner is not None
        box = MailboxRepository(session).add(
            Mailbox(
                account_id=receiver.account_id,
                owner_id=owner.id,
                email="me@acme.test",
                username="me@acme.test",
                kind="personal",
                imap_host="imap.example.com",
                imap_port=993,
                imap_security="ssl",
                smtp_host="smtp.example.com",
                smtp_port=465,
                smtp_security="ssl",
            )
        )
        capture(
            session,
            Destination.load(session, box.id),
            Placement(receiver.account_id, box.id, "inbox", 1, 1),
            Incoming.parse(mail(message_id="<synced@corp.test>", subject="Synced")),
            receiver.settings.smart_domains,
        )
    with receiver.db.transaction() as session:
        notes = crm.list_notes(session, "acme", "me@acme.test")
    synced = [n for n in notes if n["email_id"] is not None]
    assert synced and {n["auth"] for n in synced} == {None}
    assert received.notes and all(n["auth"]["dmarc"] == "pass" for n in received.notes)


# -- the command line -------------------------------------------------------------------------


def test_note_list_json_shows_auth_and_the_policy_is_set_on_the_command_line(
    database_url: str, key: SigningKey, acme: int
) -> None:
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Any:
        result = runner.invoke(
            crmmail_cli, ["--database-url", database_url, *args, "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    changed = run("account", "set", "acme", "--dmarc-policy", "accept")
    assert (changed["slug"], changed["dmarc_policy"]) == ("acme", "accept")
    refused = runner.invoke(
        crmmail_cli,
        ["--database-url", database_url, "account", "set", "acme", "--dmarc-policy", "x"],
    )
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    entry = SpoolEntry(acme, f"{GOOD_IP}:1", "mx.corp.test", "bob@corp.test", [CONTACT], mail())
    db = Database.from_url(database_url)
    try:
        with db.transaction() as session:
            InboundRepository(session).spool([entry])
    finally:
        db.dispose()
    with running_dns(records(key)) as dns:
        assert run("process", "--until-idle", env={"CRMMAIL_DNS_SERVERS": dns.address}) == {
            "processed": 1
        }
    notes = run("note", "list", "acme")
    assert notes and {json.dumps(n["auth"], sort_keys=True) for n in notes} == {
        json.dumps(
            {
                "spf": "pass",
                "dkim": "none",
                "dmarc": "pass",
                "tagged": False,
                "dmarc_policy": None,
                "results": f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=bob@corp.test; dkim=none; "
                "dmarc=pass (p=reject) header.from=corp.test",
            },
            sort_keys=True,
        )
    }


def test_the_stub_sees_every_query_go_to_it(receiver: Receiver, key: SigningKey) -> None:
    """No check may use the system's resolver: every lookup reaches the configured server."""
    stub: DnsStub
    with running_dns(records(key)) as stub:
        receiver.receive(signed(mail(), key), stub.address)
    assert {name for name, _ in stub.queries} >= {
        DOMAIN,
        f"{SELECTOR}._domainkey.{DOMAIN}",
        f"_dmarc.{DOMAIN}",
    }
