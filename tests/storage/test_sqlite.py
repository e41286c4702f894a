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


def test_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    with db.transaction() as writer:
        writer.execute(text("INSERT INTO t VALUES (1)"))  # holds the write lock until the end
        with db.read() as reader:  # would wait out the busy timeout with BEGIN IMMEDIATE
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
    with db.read() as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1
    db.dispose()
