"""Migrations: an empty database upgraded to head matches the models, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crmmail.storage.base import Base
from crmmail.storage.database import Database
from crmmail.storage.migrate import is_at_head, upgrade_to_head


def test_head_matches_the_models(db: Database) -> None:
    assert is_at_head(db.engine)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrading_again_is_a_no_op(db: Database) -> None:
    upgrade_to_head(db.engine)
    assert is_at_head(db.engine)
