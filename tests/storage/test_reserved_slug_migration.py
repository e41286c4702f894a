"""Migration 0005 reserves every existing account's slug, so an account made before it is
protected too once it is renamed; and it goes down again cleanly."""

from alembic import command
from click.testing import CliRunner
from sqlalchemy import text

from crmmail.cli import cli as crmmail_cli
from crmmail.storage.base import utcnow
from crmmail.storage.database import make_engine
from crmmail.storage.migrate import alembic_config, is_at_head, upgrade_to_head


def test_accounts_made_before_0005_keep_their_old_slug_after_a_rename(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.downgrade(alembic_config(engine), "0004")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO account (slug, name, created_at) VALUES ('epsi', 'Epsi', :now)"),
                {"now": utcnow()},
            )
        upgrade_to_head(engine)
        assert is_at_head(engine)
    finally:
        engine.dispose()

    def crmmail(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(crmmail_cli, ["--database-url", database_url, *args])
        return result.exit_code, result.stderr

    assert crmmail("account", "rename", "epsi", "zeta") == (0, "")
    code, line = crmmail("account", "create", "epsi")
    assert code == 1
    assert line.startswith("crmmail: error: slug 'epsi' is reserved: account 'zeta' had it")
