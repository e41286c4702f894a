"""The embedded default: SQLite runs in WAL mode with full sync and foreign keys on."""

from pathlib import Path

from sqlalchemy import text

from crmmail.storage.database import Database


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    with db.transaction() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()
