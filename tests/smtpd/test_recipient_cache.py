"""The RCPT cache of account ids: off the database when warm, never stale after a rename here,
stale for at most its TTL after a rename by another process, emptied by a storage failure.
"""

import asyncio
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from crmmail.config import Settings
from crmmail.services import accounts
from crmmail.smtpd import replies
from crmmail.smtpd.account_ids import AccountIdCache
from crmmail.smtpd.handler import IntakeHandler
from crmmail.storage.database import Database
from crmmail.storage.repositories.accounts import AccountRepository
from tests.faults import fail_inserts
from tests.intake import message, wire_bytes
from tests.smtpd.test_group_commit import serving

OLD = "acme@mail.localhost"
NEW = "acme-corp@mail.localhost"
LONG_TTL = 3600.0  # seconds: only forget() or the test's clock can make an entry go


class Clock:
    """A clock the test moves by hand (the cache's time seam)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def rcpt_session(port: int) -> Iterator[smtplib.SMTP]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("bob@corp.test")
        yield client


def rcpt_code(client: smtplib.SMTP, address: str) -> int:
    code, _ = client.rcpt(address)
    return code


def test_a_warm_cache_answers_rcpt_without_the_database(
    db: Database, settings: Settings, acme: int
) -> None:
    handler = IntakeHandler(db, settings.model_copy(update={"recipient_cache_ttl": LONG_TTL}))
    with serving(handler, settings) as port, rcpt_session(port) as client:
        assert rcpt_code(client, OLD) == 250
        assert rcpt_code(client, "nobody@mail.localhost") == 550
        with db.transaction() as session:
            session.execute(text("ALTER TABLE account RENAME TO account_away"))
        try:
            assert rcpt_code(client, OLD) == 250
            assert rcpt_code(client, "acme+lead@mail.localhost") == 250  # same slug
            # "no such account" is not kept: it is asked again (and the table is away)
            assert rcpt_code(client, "nobody@mail.localhost") == 451
        finally:
            with db.transaction() as session:
                session.execute(text("ALTER TABLE account_away RENAME TO account"))


def test_a_rename_in_this_process_is_seen_at_once(
    db: Database, settings: Settings, acme: int
) -> None:
    handler = IntakeHandler(db, settings.model_copy(update={"recipient_cache_ttl": LONG_TTL}))
    with serving(handler, settings) as port, rcpt_session(port) as client:
        assert rcpt_code(client, OLD) == 250
        assert rcpt_code(client, NEW) == 550
        with db.transaction() as session:
            accounts.rename_account(session, "acme", "acme-corp", handler.account_ids.forget)
        assert client.rcpt(OLD) == (550, replies.UNKNOWN_ADDRESS[4:].encode())
        assert rcpt_code(client, NEW) == 250


def test_an_account_made_by_another_process_is_accepted_at_once(
    db: Database, settings: Settings, acme: int
) -> None:
    """A refusal is a bounce: "no such account" is never answered from the cache."""
    handler = IntakeHandler(db, settings.model_copy(update={"recipient_cache_ttl": LONG_TTL}))
    with serving(handler, settings) as port, rcpt_session(port) as client:
        assert rcpt_code(client, "globex@mail.localhost") == 550
        with db.transaction() as session:  # as `crmmail account create` would: no forget()
            accounts.create_account(session, "globex", None)
        assert rcpt_code(client, "globex@mail.localhost") == 250


def test_a_rolled_back_rename_leaves_the_cache_alone(
    db: Database, settings: Settings, acme: int
) -> None:
    cache = AccountIdCache(lambda slug: acme if slug == "acme" else None, ttl=LONG_TTL)
    asyncio.run(cache.account_id("acme"))
    try:
        with db.transaction() as session:
            accounts.rename_account(session, "acme", "acme-corp", cache.forget)
            raise RuntimeError("the caller gives up")
    except RuntimeError:
        pass
    assert len(cache) == 1


def test_another_process_s_rename_is_seen_within_the_ttl(
    db: Database, settings: Settings, acme: int
) -> None:
    clock = Clock()
    handler = IntakeHandler(db, settings)  # CRMMAIL_RECIPIENT_CACHE_TTL: 5 s by default
    handler.account_ids.clock = clock
    with serving(handler, settings) as port, rcpt_session(port) as client:
        assert rcpt_code(client, OLD) == 250
        command = ["account", "rename", "acme", "acme-corp"]
        rename = subprocess.run(
            [sys.executable, "-m", "crmmail", "--database-url", settings.database_url, *command],
            capture_output=True,
            text=True,
            env={**os.environ, "CRMMAIL_SMART_DOMAINS": "mail.localhost"},
            check=False,
        )
        assert rename.returncode == 0, rename.stderr
        clock.now += settings.recipient_cache_ttl - 0.1
        assert rcpt_code(client, OLD) == 250  # still the cached answer: stale, within the TTL
        clock.now += 0.2
        assert rcpt_code(client, OLD) == 550  # the TTL is over: the database answers
        assert rcpt_code(client, NEW) == 250


def test_a_storage_failure_empties_the_cache(db: Database, settings: Settings, acme: int) -> None:
    handler = IntakeHandler(db, settings.model_copy(update={"recipient_cache_ttl": LONG_TTL}))
    fail_inserts(db, "inbound_message")
    with serving(handler, settings) as port, rcpt_session(port) as client:
        assert rcpt_code(client, OLD) == 250
        assert len(handler.account_ids) == 1
        assert client.data(wire_bytes(message()))[0] == 451
    assert len(handler.account_ids) == 0


def test_the_cache_is_bounded_and_a_ttl_of_zero_keeps_nothing(db: Database, acme: int) -> None:
    asked: list[str] = []

    def lookup(slug: str) -> int | None:
        asked.append(slug)
        with db.read() as session:
            return AccountRepository(session).id_for_slug(slug)

    async def ask(cache: AccountIdCache, *slugs: str) -> list[int | None]:
        return [await cache.account_id(slug) for slug in slugs]

    with db.transaction() as session:
        for slug in ("a", "b"):
            accounts.create_account(session, slug, None)
    bounded = AccountIdCache(lookup, ttl=LONG_TTL, max_entries=2)
    answers = asyncio.run(ask(bounded, "acme", "a", "b", "b", "nobody", "nobody", "acme"))
    assert answers[:4] == [acme, answers[1], answers[2], answers[2]]
    assert answers[4:6] == [None, None]
    # b was cached; "nobody" is asked each time; acme, least recently used, was dropped
    assert asked == ["acme", "a", "b", "nobody", "nobody", "acme"]
    assert len(bounded) == 2
    asked.clear()
    uncached = AccountIdCache(lookup, ttl=0)
    asyncio.run(ask(uncached, "acme", "acme"))
    assert asked == ["acme", "acme"]
    assert len(uncached) == 0
