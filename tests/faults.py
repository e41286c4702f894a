"""Real storage faults for tests: a database trigger that makes inserts or updates fail.

The failure comes from the database itself (as a full disk or a broken constraint would), so
the code under test meets a genuine driver error, not a mock.
"""

from sqlalchemy import text

from crmmail.storage.database import Database


def fail_inserts(db: Database, table: str, when: str = "1 = 1") -> None:
    """Make every insert into ``table`` whose new row matches ``when`` fail."""
    _fail(db, "INSERT", table, when)


def fail_updates(db: Database, table: str, when: str = "1 = 1") -> None:
    """Make every update of ``table`` whose new row matches ``when`` fail."""
    _fail(db, "UPDATE", table, when)


def _fail(db: Database, event: str, table: str, when: str) -> None:
    condition = when.replace("new.", "NEW.")
    with db.transaction() as session:
        if db.is_postgresql:
            session.execute(
                text(
                    "CREATE FUNCTION crmmail_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    f"BEGIN IF {condition} THEN RAISE EXCEPTION 'injected storage failure'; "
                    "END IF; RETURN NEW; END $$"
                )
            )
            session.execute(
                text(
                    f"CREATE TRIGGER crmmail_test_fail BEFORE {event} ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION crmmail_test_fail()"
                )
            )
        else:
            session.execute(
                text(
                    f"CREATE TRIGGER crmmail_test_fail BEFORE {event} ON {table} WHEN {condition} "
                    "BEGIN SELECT RAISE(ABORT, 'injected storage failure'); END"
                )
            )


def heal(db: Database, table: str) -> None:
    """Remove the failure ``fail_inserts`` or ``fail_updates`` put in place."""
    drop = (
        f"DROP TRIGGER crmmail_test_fail ON {table}"
        if db.is_postgresql
        else ("DROP TRIGGER crmmail_test_fail")
    )
    with db.transaction() as session:
        session.execute(text(drop))
