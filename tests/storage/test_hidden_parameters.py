"""A failed statement never shows its parameters: logs and tracebacks quote the SQL only."""

import pytest
from sqlalchemy.exc import IntegrityError

from crmmail.storage.database import Database
from crmmail.storage.models import Account

SECRET = "body of a private message, never to be logged"


def test_a_failed_insert_shows_no_parameter(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        with db.transaction() as session:
            session.add(Account(slug="acme", name="Acme"))
        with pytest.raises(IntegrityError) as failed, db.transaction() as session:
            session.add(Account(slug="acme", name=SECRET))  # the slug is taken
        shown = str(failed.value)
        assert "INSERT INTO account" in shown
        assert SECRET not in shown
        assert "hidden due to hide_parameters" in shown
    finally:
        db.dispose()
