"""Hold a PostgreSQL table lock from the test, to stop workers inside their transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from crmmail.storage.database import Database


@contextmanager
def table_locked(db: Database, table: str) -> Iterator[None]:
    """``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` for the block (then rolled back)."""
    with db.engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            transaction.rollback()


def sessions_waiting_for_a_lock(db: Database) -> int:
    """Sessions of this database blocked on a lock (a worker inside its transaction, held)."""
    with db.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )
