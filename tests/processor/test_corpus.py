"""Every message of the corpus goes through the real worker and ends as we expect of it.

The corpus is ours: ``tests/data/corpus/*.eml`` (written by us, one shape of real or broken mail
each: see its README) and the heavy ones ``tests/processor/built_corpus.py`` builds when the
tests run. Each message gets an account of its own (one database per backend serves them all)
and is spooled twice, the worker draining the spool after each: as it is (our address only in
the envelope, so it acts on nothing: ``bcc``, or what ``classify`` says of machine-made mail),
then with the account's ``+contact`` address added in Cc, which makes every participant a
contact and puts the message on their cards. ``EXPECTED`` says, for each message, how both
copies end and, where it means something, the contacts made, the subject, text and files on
the note, and what the parser's limits cut.

The shared corpus beside the checkout (``../shared/corpus``, or wherever ``CRMMAIL_CORPUS``
points) runs in addition when it is there, with the checks that hold for any mail: each copy
done or ignored with a reason, never dead, the raw bytes kept, and only the messages built to be
hostile cut by the limits. It is optional data, not a server: a clone without it simply has no
such cases (nothing is skipped), while a ``CRMMAIL_CORPUS`` that names no ``.eml`` files is an
error. The time each message takes is measured by ``bench/parser_abuse.py`` (never asserted).
"""

import hashlib
import itertools
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.mail.message import parse_message
from crmmail.mail.participants import participants_of
from crmmail.processor.worker import Worker
from crmmail.services import accounts
from crmmail.storage.database import Database
from crmmail.storage.models import Attachment, Contact, ContactEmail, InboundMessage, Note
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.pgcluster import Cluster
from tests.processor import built_corpus
from tests.processor.built_corpus import BUILT

OWN_CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
SHARED_CORPUS = Path(
    os.environ.get("CRMMAIL_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus")
)
SHARED_MESSAGES = sorted(SHARED_CORPUS.rglob("*.eml"))
if "CRMMAIL_CORPUS" in os.environ and not SHARED_MESSAGES:
    raise pytest.UsageError(f"CRMMAIL_CORPUS={SHARED_CORPUS} holds no .eml files")
SMART_DOMAIN = "mail.localhost"
ME = "me@acme.test"  # the user of every account here: never a participant
_slugs = itertools.count(1)
# The shared corpus messages built to be hostile, and what the limits cut in each.
SHARED_HOSTILE = {
    "enclosed-endless.eml": {"more than 500 MIME parts: rest not parsed"},
    "long-header.eml": {"more than 100 encoded-words in subject: cut"},
}
DONE = ("done", None)
BCC = ("ignored", "bcc")


@dataclass(frozen=True)
class File:
    """An attachment the note's message must keep (``None``: whatever the stdlib decodes)."""

    name: str | None
    content_type: str
    size: int | None = None
    sha256: str | None = None


Check = Callable[[Session, InboundMessage], None]


@dataclass(frozen=True)
class Expected:
    """How both copies of one message end, and what the one with ``+contact`` in Cc makes.

    ``contacts`` maps each contact made to its name (``None``: not checked); every one of them
    gets the note, and nothing else does. ``subject`` is the note's, ``text`` and ``html`` are
    found in its bodies, ``files`` are the attachments kept, in order, and ``limits`` start the
    notes of what the parser cut, in order. ``check`` looks at anything else that matters.
    """

    visible: tuple[str, str | None] = DONE
    as_is: tuple[str, str | None] = BCC
    contacts: Mapping[str, str | None] = field(default_factory=dict)
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    files: tuple[File, ...] = ()
    limits: tuple[str, ...] = ()
    check: Check | None = None


def machine_made(reason: str) -> Expected:
    """Mail ``classify`` recognises: both copies end there, nothing is made."""
    return Expected(visible=("ignored", reason), as_is=("ignored", reason))


def dated_by_arrival(session: Session, visible: InboundMessage) -> None:
    [note] = session.scalars(select(Note).where(Note.inbound_id == visible.id)).all()
    assert note.date == visible.received_at


def keyed_by_content(session: Session, visible: InboundMessage) -> None:
    assert visible.message_id is None
    assert visible.message_key == f"sha256:{visible.sha256}"


def from_nobody(session: Session, visible: InboundMessage) -> None:
    [note] = session.scalars(select(Note).where(Note.inbound_id == visible.id)).all()
    assert note.from_addr == ""


def first_message_id(session: Session, visible: InboundMessage) -> None:
    assert visible.message_key == "mid:dup-first@client.test"


ANN = {"ann.lee@client.test": "Ann Lee"}
BO = {"bo.berg@client.test": "Bo Berg"}
KAI = {"kai@client.test": "Kai Wong"}
PIA = {"pia@client.test": "Pia Sand"}
JUERGEN = {"juergen@kunde.test": "Jürgen Groß"}
FRANCOISE = {"francoise@client.test": "Francoise Muller"}

EXPECTED: dict[str, Expected] = {
    # -- real-world shapes ----------------------------------------------------------------------
    "alternative-inline-images.eml": Expected(
        contacts=ANN | BO,
        subject="RE: Quote for the spring order",
        text="thanks, see the chart below: we would take 100 widgets in March.",
        html='src="cid:image001.png@01DB53A1.6A1B2C30"',
        files=(File("image001.png", "image/png", 80), File("", "image/gif", 43)),
    ),
    "alternative-quoted-printable-utf8.eml": Expected(
        contacts=JUERGEN,
        subject="Liefertermin für KW 3",
        text="auf die Kalenderwoche 3. Die Maße bleiben unverändert.\r\n\r\nViele Grüße",
        html="Kalenderwoche 3",
    ),
    "forwarded-as-attachment.eml": Expected(  # people of the forwarded message are no one's
        contacts=PIA,
        subject="Fwd: Contract draft",
        text="See below, the draft from our lawyers.",
        files=(File("contract-draft.pdf", "application/pdf", 193),),
    ),
    "forwarded-inline.eml": Expected(
        contacts=PIA, text="From: Olaf Dahl <olaf@supplier.test>\r\nDate: Tue, 22 Dec 2026"
    ),
    "calendar-invite.eml": Expected(
        contacts=ANN | KAI,
        subject="Invitation: Kick-off @ Tue 12 Jan 2027 10:00 - 11:00 (CET) (me@acme.test)",
        text="Kick-off\r\nTuesday 12 January 2027",
        files=(File("", "text/calendar", 618), File("invite.ics", "application/ics", 618)),
    ),
    "calendar-reply.eml": Expected(
        contacts=KAI | ANN,
        subject="Accepted: Kick-off",
        files=(File("", "text/calendar", 247),),
    ),
    "smime-signed.eml": Expected(
        contacts=ANN,
        text="We confirm the order of 100 widgets.",
        files=(File("smime.p7s", "application/pkcs7-signature", 256),),
    ),
    "pgp-encrypted.eml": Expected(
        contacts=KAI,
        files=(
            File("", "application/pgp-encrypted", 12),
            File("encrypted.asc", "application/octet-stream", 127),
        ),
    ),
    "tnef-winmail.eml": Expected(
        contacts={"otto@lawfirm.test": "Otto Brandt"},
        files=(File("winmail.dat", "application/ms-tnef", 64),),
    ),
    "html-only.eml": Expected(
        contacts=ANN, html="<p>Only an HTML part, no plain text: 100 Stühle.</p>"
    ),
    "mbox-from-line.eml": Expected(
        contacts=ANN, subject="Exported from an mbox", text=">From the mbox"
    ),
    "international-addresses.eml": Expected(
        contacts={"ivo@exämple.de": "Ivo Novak", "jürgen@müller.test": "Jürgen"}
    ),
    "group-syntax-recipients.eml": Expected(contacts=ANN | BO | {"kai@client.test": "Kai"}),
    "duplicate-headers.eml": Expected(
        contacts=ANN | BO, subject="The first subject", check=first_message_id
    ),
    # -- machine-made: bounces, reports, auto-replies, lists ------------------------------------
    "dsn-mailer-daemon.eml": machine_made("bounce"),
    "dsn-exchange-undeliverable.eml": machine_made("bounce"),  # by its multipart/report alone
    "dsn-delayed.eml": machine_made("bounce"),
    "read-receipt-mdn.eml": machine_made("auto_reply"),
    "abuse-feedback-report.eml": machine_made("feedback"),
    "auto-reply-rfc3834.eml": machine_made("auto_reply"),
    "auto-reply-vendor-header.eml": machine_made("auto_reply"),
    "auto-reply-encoded-subject.eml": machine_made("auto_reply"),
    "mailing-list-post.eml": machine_made("list"),
    "newsletter-bulk.eml": machine_made("bulk"),
    # -- broken charsets and encodings -----------------------------------------------------------
    "charset-unknown.eml": Expected(
        contacts={"olaf@supplier.test": "Olaf Dahl"},
        subject="Order 42 confirmed",
        text="Order 42 confirmed for delivery on Monday.",
    ),
    "charset-mislabelled.eml": Expected(contacts=BO, text="Lieferung frei Haus."),
    "charset-windows-1252.eml": Expected(
        contacts=BO,
        subject="Angebot „Premium“ 1.200 €",
        text="Das Paket „Premium“ kostet 1.200 € \u2013 inklusive Montage.",
    ),
    "charset-iso-2022-jp.eml": Expected(
        contacts={"yamada@torihiki.test": "山田太郎"},
        subject="見積書の件",
        text="お見積書をお送りします。",
    ),
    "base64-broken.eml": Expected(
        contacts=PIA,
        text="The figures are in the attached sheet.",
        files=(
            File("figures.pdf", "application/pdf", 190),  # what the cut base64 still holds
            File("unknown-encoding.bin", "application/octet-stream", 16),  # kept as it came
        ),
    ),
    "quoted-printable-broken.eml": Expected(
        contacts=PIA,
        text="Totals: 100 EUR =ZZ broken escape, a lone soft break, raw 8-bit Grüße,",
    ),
    "header-8bit-utf8.eml": Expected(
        contacts=JUERGEN, subject="Anfrage für 200 Stühle", text="Grüße aus München."
    ),
    "header-8bit-latin1.eml": Expected(  # 8-bit headers are read as UTF-8; the rest is U+FFFD
        contacts={"juergen@kunde.test": "J\ufffdrgen Gro\ufffd"},
        subject="Anfrage f\ufffdr 200 St\ufffdhle",
    ),
    "rfc2047-names.eml": Expected(
        contacts={
            "francoise@client.test": "Françoise Müller",
            "juergen@kunde.test": "Jürgen Groß",
            "ola@client.test": "Ola Nordmann",
            "yamada@torihiki.test": "山田太郎",
        },
        subject="Angebot für Stühle und 🪑",
    ),
    "rfc2047-malformed.eml": Expected(  # what is no encoded-word stays as it came
        contacts={"bo.berg@client.test": "=?utf-8?q?Bo_Berg"},
        subject="=?utf-8?X?abc?= äcaf\ufffd end",
    ),
    "rfc2231-filenames.eml": Expected(
        contacts=FRANCOISE,
        files=(
            File("Angebot Müller €.pdf", "application/pdf", 193),
            File("日本語のファイル.txt", "text/plain", 21),
            File(
                "Präsentation 2027.pptx",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                10,
            ),
            File("Preisliste Änderung.xls", "application/vnd.ms-excel", 8),
        ),
    ),
    "rfc2231-broken.eml": Expected(
        contacts=FRANCOISE,
        files=(
            File(None, "application/octet-stream", 3),
            File(None, "application/octet-stream", 3),
            File(None, "application/octet-stream", 5),
        ),
    ),
    "encoded-words-flood.eml": Expected(
        contacts=BO,
        subject="".join(f"w{n:03d}" for n in range(100)),
        limits=("more than 100 encoded-words in subject: cut",),
    ),
    # -- line endings and bytes ------------------------------------------------------------------
    "bare-lf.eml": Expected(
        contacts=BO,
        text="written by a script that never heard of CRLF.",
        files=(File("stock.csv", "text/csv", 50),),
    ),
    "mixed-line-endings.eml": Expected(
        contacts=BO, subject="Mixed line ends", text="a lone CR\rand the last in none"
    ),
    "nul-bytes.eml": Expected(  # NUL leaves every text (PostgreSQL refuses it), not the file
        contacts=KAI,
        subject="Quote for you",
        text="The price is 12 EUR.",
        html="<p>The price is 12 EUR.</p>",
        files=(File("zeros.bin", "application/octet-stream", 4),),
    ),
    # -- missing headers -------------------------------------------------------------------------
    "no-from.eml": Expected(contacts=KAI, check=from_nobody),
    "no-date.eml": Expected(contacts=KAI, check=dated_by_arrival),
    "no-message-id.eml": Expected(contacts=KAI, check=keyed_by_content),
    "no-headers.eml": Expected(visible=("ignored", "no_participants")),
    "headers-only.eml": Expected(contacts=KAI, subject="Headers and nothing else"),
    # -- broken MIME structure -------------------------------------------------------------------
    "multipart-without-boundary.eml": Expected(contacts=BO),
    "multipart-wrong-boundary.eml": Expected(contacts=BO),
    "multipart-truncated.eml": Expected(
        contacts=BO,
        text="The attachment below never ends.",
        files=(File("half.pdf", "application/pdf"),),
    ),
    # -- built: deep, wide and heavy (tests/processor/built_corpus.py) ---------------------------
    "nested-forwards": Expected(
        contacts=BO,
        subject="Fwd: level 6",
        text="Forward number 6.",
        files=(File("original.pdf", "application/pdf", len(built_corpus.PDF)),),
    ),
    "multipart-40-deep": Expected(
        contacts=BO,
        text="The text is on top.",
        limits=("MIME nesting deeper than 20: that part not parsed",),
    ),
    "rfc822-2000-deep": Expected(
        contacts=BO,
        subject="Endless enclosures",
        limits=(
            "MIME nesting deeper than 20: that part not parsed",
            "MIME nesting deeper than 20: that part not read",
        ),
    ),
    "six-hundred-parts": Expected(
        contacts=BO,
        text="Six hundred parts.",
        files=tuple(File(f"part-{n:03d}.csv", "text/csv", 5) for n in range(1, 500)),
        limits=("more than 500 MIME parts: rest not parsed",),
    ),
    "big-attachment": Expected(
        contacts=BO,
        files=(
            File(
                "scans.bin",
                "application/octet-stream",
                len(built_corpus.BIG_ATTACHMENT),
                hashlib.sha256(built_corpus.BIG_ATTACHMENT).hexdigest(),
            ),
        ),
    ),
    "one-megabyte-line": Expected(contacts=BO, text=built_corpus.LONG_LINE),
    "long-thread-references": Expected(
        contacts=BO | KAI,
        subject="Re: the long thread",
        text="The 701st message.",
        limits=("header field too long: cut",),
    ),
    "three-hundred-recipients": Expected(  # the loop guard lets one sender make 20 an hour
        visible=("done", "loop_guard"),
        contacts=BO | {f"person{n:03d}@many.test": f"Person {n}" for n in range(19)},
    ),
}
# Known processor bugs, one case each: strict, so the fix makes these fail until unmarked.
KNOWN_BUGS: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    """One message of a corpus: where it comes from and how to get its bytes."""

    name: str
    load: Callable[[], bytes]
    expected: Expected | None  # None: the shared corpus, checked as any mail


def _file(path: Path) -> Callable[[], bytes]:
    return path.read_bytes


CASES = [
    *(Case(path.name, _file(path), EXPECTED.get(path.name)) for path in OWN_CORPUS.glob("*.eml")),
    *(Case(name, build, EXPECTED.get(name)) for name, build in BUILT.items()),
]
CASES.sort(key=lambda case: case.name)
SHARED_CASES = [Case(path.name, _file(path), None) for path in SHARED_MESSAGES]


def _params(cases: list[Case], prefix: str) -> list[object]:
    return [
        pytest.param(
            case,
            id=f"{prefix}/{case.name}",
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case.name])]
            if case.name in KNOWN_BUGS
            else [],
        )
        for case in cases
    ]


ALL_CASES = _params(CASES, "corpus") + _params(SHARED_CASES, "shared")


def test_every_message_of_our_corpus_has_its_expectations() -> None:
    files = {path.name for path in OWN_CORPUS.glob("*.eml")}
    assert len(files) >= 40, f"expected our corpus at {OWN_CORPUS}"
    assert files | set(BUILT) == set(EXPECTED)
    assert set(KNOWN_BUGS) <= set(EXPECTED)


@pytest.mark.parametrize("case", ALL_CASES)
def test_the_parser_cuts_only_what_is_expected(case: Case) -> None:
    parsed = parse_message(case.load())
    participants_of(parsed, {ME}, ("mail.localhost",))
    if case.expected is None:  # the shared corpus: its hostile messages are cut, at least so
        assert SHARED_HOSTILE.get(case.name, set()) <= set(parsed.limits)
        assert bool(parsed.limits) == (case.name in SHARED_HOSTILE), parsed.limits
        return
    assert len(parsed.limits) == len(case.expected.limits), parsed.limits
    for limit, start in zip(parsed.limits, case.expected.limits, strict=True):
        assert limit.startswith(start), parsed.limits


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def corpus_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database at head per backend for every message: each message gets its own account
    (tenants share nothing), so no message pays for making a database."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("corpus") / "crmmail.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    _admin(cluster, "CREATE DATABASE corpus TEMPLATE crmmail_template")
    yield cluster.url("corpus")
    _admin(cluster, "DROP DATABASE corpus WITH (FORCE)")


def _admin(cluster: Cluster, statement: str) -> None:
    with psycopg.connect(
        host=str(cluster.socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(statement)


@pytest.fixture(scope="module")
def corpus_db(corpus_url: str) -> Iterator[Database]:
    database = Database.from_url(corpus_url)
    yield database
    database.dispose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ALL_CASES)
def test_the_worker_ends_each_message_as_expected(
    case: Case, corpus_url: str, corpus_db: Database
) -> None:
    settings = Settings(  # made here, after the shell's CRMMAIL_* are out of the environment
        database_url=corpus_url,
        smart_domains=(SMART_DOMAIN,),
        retry_base_delay=0,
        worker_idle_poll=0.05,
    )
    slug = f"corpus{next(_slugs)}"
    with corpus_db.transaction() as session:
        account = accounts.create_account(session, slug, None).id
        accounts.add_user(
            session,
            slug,
            ME,
            name="Me Myself",
            admin=True,
            email_access=True,
            smart_domains=(SMART_DOMAIN,),
        )
    raw = case.load()
    contact = f"{slug}+contact@{SMART_DOMAIN}"
    worker = Worker(corpus_db, settings)
    as_is = _process(corpus_db, worker, account, contact, raw)
    visible = _process(corpus_db, worker, account, contact, f"Cc: {contact}\r\n".encode() + raw)
    with corpus_db.transaction() as session:
        rows = [session.get_one(InboundMessage, row_id) for row_id in (as_is, visible)]
        for row in rows:
            assert row.status != "dead", row.last_error
            assert row.status in {"done", "ignored"}, row.status
            assert row.status == "done" or row.reason, f"{row.status} without a reason"
        assert rows[0].raw == raw
        assert rows[0].status == "ignored"
        assert session.scalars(select(Note).where(Note.inbound_id == as_is)).all() == []
        _check_stored_text(session, account, visible)
        if case.expected is not None:
            _check_expected(session, account, rows[0], rows[1], case.expected)


def _process(db: Database, worker: Worker, account: int, contact: str, raw: bytes) -> int:
    """Spool one copy from a loopback peer (not checked by SPF/DKIM) and drain the spool."""
    with db.transaction() as session:
        [row_id] = InboundRepository(session).spool(
            [SpoolEntry(account, "127.0.0.1:1", "test", "sender@corp.test", [contact], raw)]
        )
    worker.run_until_idle()
    return row_id


def _check_stored_text(session: Session, account: int, inbound_id: int) -> None:
    """What any message leaves is storable text: no NUL (SQLite would keep it), every note dated."""
    for note in session.scalars(select(Note).where(Note.inbound_id == inbound_id)):
        for text in (note.subject, note.from_addr, note.to_addrs, note.cc_addrs, note.text_body):
            assert "\x00" not in text
        assert "\x00" not in note.html_body
        assert note.date is not None
    for name in session.scalars(select(Contact.name).where(Contact.account_id == account)):
        assert "\x00" not in name
    for filename in session.scalars(
        select(Attachment.filename).where(Attachment.inbound_id == inbound_id)
    ):
        assert "\x00" not in filename


def _check_expected(
    session: Session,
    account: int,
    as_is: InboundMessage,
    visible: InboundMessage,
    expected: Expected,
) -> None:
    assert (as_is.status, as_is.reason) == expected.as_is
    assert (visible.status, visible.reason) == expected.visible
    contacts = dict(
        session.execute(
            select(ContactEmail.email, Contact.name)
            .join(Contact, Contact.id == ContactEmail.contact_id)
            .where(Contact.account_id == account)
        ).all()
    )
    assert set(contacts) == set(expected.contacts)
    for address, name in expected.contacts.items():
        assert name is None or contacts[address] == name, (address, contacts[address])
    notes = session.scalars(select(Note).where(Note.inbound_id == visible.id)).all()
    contact_ids = set(session.scalars(select(Contact.id).where(Contact.account_id == account)))
    assert {(note.entity_type, note.entity_id) for note in notes} == {
        ("contact", contact_id) for contact_id in contact_ids
    }
    for note in notes:
        assert expected.subject is None or note.subject == expected.subject
        assert expected.text is None or expected.text in note.text_body
        assert expected.html is None or expected.html in note.html_body
    files = session.scalars(
        select(Attachment).where(Attachment.inbound_id == visible.id).order_by(Attachment.id)
    ).all()
    assert len(files) == len(expected.files), [(f.filename, f.content_type) for f in files]
    for stored, wanted in zip(files, expected.files, strict=True):
        assert wanted.name is None or stored.filename == wanted.name
        assert stored.content_type == wanted.content_type
        assert stored.size == len(stored.content)
        assert wanted.size is None or stored.size == wanted.size
        assert wanted.sha256 is None or stored.sha256 == wanted.sha256
        assert stored.sha256 == hashlib.sha256(stored.content).hexdigest()
    if expected.check is not None:
        expected.check(session, visible)
