"""Measure the worker: messages per second through parse, route, match and store, vs a bare parse.

The mix: every ``.eml`` of ``/work/shared/corpus/flanker`` (where it is missing, as in a fresh
clone, those of the project's own ``tests/data/corpus``; a ``Cc: acme@mail.localhost`` line
put on top, so each one acts instead of ending as ``ignored: bcc``) plus generated CRM mail:
replies between known contacts to ``acme@``, new leads to ``acme+lead@``, CCs to ``acme@`` with
several participants (known and unknown), some with a PDF-sized attachment. The account knows
1,000 contacts (a tenth in open leads, a twentieth in customers). Every message is spooled with
a loopback peer (``127.0.0.1``): sender authentication skips ``CRMMAIL_AUTH_IGNORE_NETWORKS``
(loopback by default), so no DNS query is made. Then ``Worker.run_until_idle()`` is timed.

The reference, in the same process on the same bytes: ``email.message_from_bytes(raw,
policy=email.policy.default)``, every header read as text, and the ``get_body()`` content.
Target: the worker's cost per message at most 3x the bare parse.

SQLite runs on a fresh file with the production settings (WAL, ``synchronous=FULL``); PostgreSQL
on a throwaway cluster (``tests/pgcluster.py``: fsync off), unless --no-postgresql.

    .venv/bin/python bench/processing.py [--messages 400] [--runs 3] [--json FILE] [--smoke]
"""

import argparse
import contextlib
import email
import email.policy
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``crmmail`` and ``tests.*`` importable
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from crmmail.config import Settings  # noqa: E402
from crmmail.processor.worker import Worker  # noqa: E402
from crmmail.services import accounts  # noqa: E402
from crmmail.storage.base import utcnow  # noqa: E402
from crmmail.storage.database import Database  # noqa: E402
from crmmail.storage.migrate import upgrade_to_head  # noqa: E402
from crmmail.storage.models import (  # noqa: E402
    Contact,
    ContactEmail,
    Customer,
    Lead,
    Note,
    customer_contact,
    lead_contact,
)
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry  # noqa: E402

BENCH = "processing"
REFERENCE = "email.message_from_bytes(policy=default) + headers + get_body()"
SHARED_CORPUS = Path("/work/shared/corpus/flanker")
OWN_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
CORPUS = SHARED_CORPUS if SHARED_CORPUS.is_dir() else OWN_CORPUS
SMART_DOMAIN = "mail.localhost"
SLUG = "acme"
NOTE_ADDRESS = f"{SLUG}@{SMART_DOMAIN}"
LEAD_ADDRESS = f"{SLUG}+lead@{SMART_DOMAIN}"
USER = "me@acme.test"
PEER = "127.0.0.1:40000"  # loopback: sender authentication is skipped, no DNS
KNOWN_CONTACTS = 1_000  # the mix names contacts 0..999, whatever the size of the CRM
BATCH = 20_000  # rows per executemany
ATTACHMENT = bytes(random.Random(7).getrandbits(8) for _ in range(60_000))


# -- the CRM fixture -------------------------------------------------------------------------


def contact_address(number: int) -> str:
    return f"person{number}@company{number % 97}.test"


def fresh_database(url: str) -> Database:
    """A database at head with the account ``acme`` and its user ``me@acme.test``."""
    db = Database.from_url(url)
    upgrade_to_head(db.engine)
    with db.transaction() as session:
        accounts.create_account(session, SLUG, "Acme Inc.")
        accounts.add_user(
            session,
            SLUG,
            USER,
            name="Me Myself",
            admin=True,
            email_access=True,
            smart_domains=(SMART_DOMAIN,),
        )
    return db


def account_id(db: Database) -> int:
    with db.read() as session:
        return accounts.get_account(session, SLUG).id


def seed_crm(db: Database, contacts: int, notes: int, progress: bool = False) -> None:
    """Bulk-insert ``contacts`` contacts (one address each), their leads, customers, and notes."""
    account = account_id(db)
    now = utcnow()
    with db.engine.begin() as connection:

        def put(table: Any, rows: Iterator[dict[str, Any]], what: str) -> None:
            batch: list[dict[str, Any]] = []
            done = 0
            for row in rows:
                batch.append(row)
                if len(batch) == BATCH:
                    connection.execute(insert(table), batch)
                    done += len(batch)
                    batch = []
                    if progress and done % 200_000 == 0:
                        print(f"  {what}: {done}", file=sys.stderr, flush=True)
            if batch:
                connection.execute(insert(table), batch)

        put(
            Contact.__table__,
            (
                {
                    "id": n + 1,
                    "account_id": account,
                    "name": f"Person {n}",
                    "first_name": "Person",
                    "created_at": now,
                    "source_sender": None,
                }
                for n in range(contacts)
            ),
            "contacts",
        )
        put(
            ContactEmail.__table__,
            (
                {"account_id": account, "contact_id": n + 1, "email": contact_address(n)}
                for n in range(contacts)
            ),
            "addresses",
        )
        leads = contacts // 10
        put(
            Lead.__table__,
            (
                {
                    "id": n + 1,
                    "account_id": account,
                    "name": f"Deal {n}",
                    "status": "open" if n % 3 else "won",
                    "created_at": now,
                    "source_sender": None,
                }
                for n in range(leads)
            ),
            "leads",
        )
        put(lead_contact, ({"lead_id": n + 1, "contact_id": n * 10 + 1} for n in range(leads)), "")
        customers = contacts // 20
        put(
            Customer.__table__,
            (
                {"id": n + 1, "account_id": account, "name": f"Firm {n}", "created_at": now}
                for n in range(customers)
            ),
            "customers",
        )
        put(
            customer_contact,
            ({"customer_id": n + 1, "contact_id": n * 20 + 2} for n in range(customers)),
            "",
        )
        put(
            Note.__table__,
            (
                {
                    "account_id": account,
                    "entity_type": "contact",
                    "entity_id": n % contacts + 1,
                    "message_key": f"mid:old-{n}@history.test",
                    "subject": f"Old thread {n}",
                    "from_addr": contact_address(n % contacts),
                    "to_addrs": USER,
                    "cc_addrs": NOTE_ADDRESS,
                    "date": now,
                    "text_body": "An earlier message kept on the card.\n" * 4,
                    "html_body": "",
                    "message_id": f"<old-{n}@history.test>",
                    "content_removed": False,
                    "created_at": now,
                }
                for n in range(notes)
            ),
            "notes",
        )
    if db.is_postgresql:  # explicit ids: move the sequences past them
        with db.engine.connect() as connection:
            for table in ("contact", "lead", "customer"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
            connection.commit()
            connection.exec_driver_sql("ANALYZE")
            connection.commit()


# -- the mix ---------------------------------------------------------------------------------


def corpus_messages() -> list[bytes]:
    """The public corpus, each with the note address in a Cc line on top."""
    return [
        f"Cc: {NOTE_ADDRESS}\r\n".encode() + path.read_bytes()
        for path in sorted(CORPUS.glob("*.eml"))
    ]


def generated_messages(count: int, seed: int) -> list[tuple[str, list[str], bytes]]:
    """CRM mail: (MAIL FROM, RCPT TOs, bytes) for ``count`` messages of the generated mix."""
    rng = random.Random(seed)
    made: list[tuple[str, list[str], bytes]] = []
    for n in range(count):
        kind = n % 10
        sender = rng.randrange(KNOWN_CONTACTS)
        mail = EmailMessage()
        from_addr = contact_address(sender)
        mail["From"] = formataddr((f"Person {sender}", from_addr))
        if kind < 5:  # a reply between known contacts, the note address in Cc
            other = rng.randrange(KNOWN_CONTACTS)
            mail["To"] = formataddr((f"Person {other}", contact_address(other)))
            mail["Cc"] = NOTE_ADDRESS
            mail["Subject"] = f"Re: order {rng.randrange(10_000)}"
            rcpt = NOTE_ADDRESS
        elif kind < 7:  # a new lead: a stranger writes, the lead address in Cc
            from_addr = f"buyer{seed}-{n}@newco{n % 13}.test"
            del mail["From"]
            mail["From"] = formataddr((f"New Buyer {n}", from_addr))
            mail["To"] = USER
            mail["Cc"] = LEAD_ADDRESS
            mail["Subject"] = f"Interested in {rng.randrange(1, 500)} widgets"
            rcpt = LEAD_ADDRESS
        else:  # a CC to the note address with several participants, known and unknown
            people = [rng.randrange(KNOWN_CONTACTS) for _ in range(rng.randrange(3, 7))]
            mail["To"] = ", ".join(formataddr((f"Person {p}", contact_address(p))) for p in people)
            mail["Cc"] = f"{NOTE_ADDRESS}, stranger{n}@elsewhere.test, {USER}"
            mail["Subject"] = f"Meeting notes {n}"
            rcpt = NOTE_ADDRESS
        mail["Date"] = formatdate()
        mail["Message-ID"] = f"<gen-{seed}-{n}@bench.test>"
        mail.set_content(
            "Hello,\n\n" + "Thanks for the call; the figures we discussed follow.\n" * 30
        )
        if kind == 9:
            mail.add_attachment(
                ATTACHMENT, maintype="application", subtype="pdf", filename="quote.pdf"
            )
        made.append((from_addr, [rcpt], mail.as_bytes(policy=email.policy.SMTP)))
    return made


def mix(messages: int, seed: int) -> list[tuple[str, list[str], bytes]]:
    corpus = [("someone@corpus.test", [NOTE_ADDRESS], raw) for raw in corpus_messages()]
    return corpus + generated_messages(max(0, messages - len(corpus)), seed)


def spool(db: Database, messages: list[tuple[str, list[str], bytes]]) -> None:
    account = account_id(db)
    entries = [
        SpoolEntry(account, PEER, "bench.test", mail_from, rcpt, raw)
        for mail_from, rcpt, raw in messages
    ]
    with db.transaction() as session:
        InboundRepository(session).spool(entries)


def settings_for(url: str) -> Settings:
    return Settings(database_url=url, smart_domains=(SMART_DOMAIN,), retry_base_delay=0)


def time_worker(db: Database, url: str, expected: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds from the start to each message's outcome, as one worker drains."""
    finished: list[tuple[float, float]] = []
    worker = Worker(
        db,
        settings_for(url),
        on_processed=lambda *_: finished.append((time.perf_counter(), time.process_time())),
    )
    start, start_cpu = time.perf_counter(), time.process_time()
    taken = worker.run_until_idle()
    if taken != expected or len(finished) != expected:
        raise SystemExit(f"{BENCH}: the worker took {taken} messages, {expected} were spooled")
    return [(wall - start, cpu - start_cpu) for wall, cpu in finished]


# -- the reference ---------------------------------------------------------------------------


def bare_parse(raw: bytes) -> int:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    size = 0
    for _name, value in message.items():
        size += len(str(value))
    body = message.get_body()  # type: ignore[attr-defined]
    if body is not None:
        content = body.get_content()
        size += len(content)
    return size


def reference_seconds(raws: list[bytes]) -> tuple[float, float]:
    """(wall, CPU) seconds of the bare parse of every message."""
    start, start_cpu = time.perf_counter(), time.process_time()
    for raw in raws:
        with contextlib.suppress(Exception):  # the stdlib raises on some hostile mail
            bare_parse(raw)
    return time.perf_counter() - start, time.process_time() - start_cpu


# -- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def postgresql() -> Iterator[Any]:
    from tests.pgcluster import throwaway_cluster

    with throwaway_cluster() as cluster:
        yield cluster


def new_pg_database(cluster: Any, name: str) -> str:
    with psycopg.connect(
        host=str(cluster.socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")  # type: ignore[arg-type]
        connection.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return str(cluster.url(name))


# -- results ---------------------------------------------------------------------------------


def span(values: list[float], digits: int = 3) -> str:
    return f"{min(values):.{digits}f}\u2013{max(values):.{digits}f}"  # an en dash


def row(
    what: str,
    ours: list[float],
    unit: str,
    target: str,
    reference: list[float] | None = None,
    reference_name: str | None = None,
    ratios: list[float] | None = None,
    met: bool | None = None,
) -> dict[str, Any]:
    spread = span(ours)
    if ratios:
        spread += f" (ratio {span(ratios, 2)})"
    return {
        "what": what,
        "ours": statistics.median(ours),
        "reference": statistics.median(reference) if reference else None,
        "reference_name": reference_name,
        "unit": unit,
        "ratio": statistics.median(ratios) if ratios else None,
        "target": target,
        "met": met,
        "runs": len(ours),
        "spread": spread,
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "cores": str(os.cpu_count())}
    for package in ("sqlalchemy", "psycopg"):
        found[package] = version(package)
    import sqlite3

    found["sqlite"] = sqlite3.sqlite_version
    return found


def write_json(path: Path | None, bench: str, rows: list[dict[str, Any]], notes: list[str]) -> None:
    result = {"bench": bench, "rows": rows, "notes": notes, "versions": versions()}
    if path is not None:  # atomically: a half-written file never reaches the report
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(result, indent=2) + "\n")
        partial.replace(path)


def print_rows(rows: list[dict[str, Any]]) -> None:
    for item in rows:
        ratio = f"  ratio {item['ratio']:.2f} ({item['target']})" if item["ratio"] else ""
        reference = (
            f"  {item['reference_name']} {item['reference']:.3f}"
            if item["reference"] is not None
            else ""
        )
        print(f"{item['what']}: {item['ours']:.3f} {item['unit']}{reference}{ratio}")
        print(f"    spread {item['spread']} over {item['runs']} run(s)")


def quiet_logs() -> None:
    logging.basicConfig(level=logging.ERROR)


# -- the benchmark ---------------------------------------------------------------------------


Run = dict[str, tuple[float, float, int]]  # what -> (ours s, reference s, messages)
PARTS = ("whole mix", "generated CRM mail only", "corpus only")


def measure(url: str, messages: list[tuple[str, list[str], bytes]], corpus: int) -> Run:
    """Worker and reference seconds on a fresh database at ``url``, wall and CPU, per part.

    The corpus is spooled first, so the worker's split is the outcome of its last message.
    """
    db = fresh_database(url)
    try:
        seed_crm(db, KNOWN_CONTACTS, KNOWN_CONTACTS * 2)
        spool(db, messages)
        raws = [raw for _, _, raw in messages]
        ref_corpus = reference_seconds(raws[:corpus])
        ref_generated = reference_seconds(raws[corpus:])
        finished = time_worker(db, url, len(messages))
    finally:
        db.dispose()
    run: Run = {}
    for clock in (0, 1):
        name = ("wall", "CPU")[clock]
        split = finished[corpus - 1][clock] if corpus else 0.0
        end = finished[-1][clock]
        ref_total = ref_corpus[clock] + ref_generated[clock]
        run[f"whole mix/{name}"] = (end, ref_total, len(messages))
        run[f"corpus only/{name}"] = (split, ref_corpus[clock], corpus)
        run[f"generated CRM mail only/{name}"] = (
            end - split,
            ref_generated[clock],
            len(messages) - corpus,
        )
    return run


def backend_rows(name: str, results: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for clock in ("wall", "CPU"):
        for part in PARTS:
            figures = [result[f"{part}/{clock}"] for result in results]
            ours_ms = [ours / count * 1000 for ours, _, count in figures]
            ref_ms = [ref / count * 1000 for _, ref, count in figures]
            ratios = [o / r for o, r in zip(ours_ms, ref_ms, strict=True)]
            label = "" if clock == "wall" else " (CPU time of this process)"
            rows.append(
                row(
                    f"processing cost per message{label}, {name}, {part} ({figures[0][2]} msgs)",
                    ours_ms,
                    "ms/msg",
                    "≤ 3x the bare parse" if clock == "wall" else "(diagnostic)",
                    reference=ref_ms,
                    reference_name=REFERENCE,
                    ratios=ratios,
                    met=statistics.median(ratios) <= 3.0 if clock == "wall" else None,
                )
            )
            if part == "whole mix" and clock == "wall":
                rates = [count / ours for ours, _, count in figures]
                rows.append(
                    row(f"processing rate, {name}, whole mix", rates, "msg/s", "(reported)")
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400, help="messages in the mix")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results here")
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.runs = 60, 1
    quiet_logs()
    messages = mix(args.messages, seed=1)
    count = len(messages)
    corpus = len(corpus_messages())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="crmmail-processing-") as tmp:
        sqlite = [
            measure(f"sqlite:///{tmp}/run-{run}.db", messages, corpus) for run in range(args.runs)
        ]
        rows += backend_rows("SQLite", sqlite)
    if not args.no_postgresql:
        with postgresql() as cluster:
            pg = [
                measure(new_pg_database(cluster, f"processing_{run}"), messages, corpus)
                for run in range(args.runs)
            ]
        rows += backend_rows("PostgreSQL", pg)
    notes = [
        f"{count} messages per run: {corpus} corpus files "
        f"(a Cc to {NOTE_ADDRESS} added on top) and generated CRM mail (50% replies between "
        "known contacts, 20% new leads, 30% CCs with 3-6 participants and 10% with a 60 kB "
        f"PDF); the account knows {KNOWN_CONTACTS} contacts and {2 * KNOWN_CONTACTS} notes.",
        "Spooled with a loopback peer: sender authentication (SPF/DKIM/DMARC) is skipped for "
        "CRMMAIL_AUTH_IGNORE_NETWORKS, so no DNS is involved.",
        "One worker, Worker.run_until_idle() in this process: one transaction per message "
        "(the pipeline, its outcome and the claim of the next message). SQLite: WAL, "
        "synchronous=FULL; PostgreSQL: throwaway cluster with fsync off.",
        "The corpus holds a 3 MB message that the reference's policy=default parser takes about "
        "2 s on (crmmail's bounded compat32 parse: 0.06 s), which makes the whole-mix ratio "
        "flattering; the generated-CRM-mail row is the fair one.",
        "CPU-time rows: time.process_time() of this process around the reference and the "
        "worker (no other thread is busy). They leave out waits (fsync, other processes on "
        "the cores) and, on PostgreSQL, the server's own work: a diagnostic for loaded "
        "machines, not the target.",
    ]
    write_json(args.json, BENCH, rows, notes)
    print_rows(rows)


if __name__ == "__main__":
    main()
