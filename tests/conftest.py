"""Fixtures: every storage test runs on SQLite and on a real PostgreSQL the suite starts itself."""

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from crmmail.config import Settings
from crmmail.storage.database import Database, make_engine
from crmmail.storage.migrate import upgrade_to_head
from tests.pgcluster import Cluster, throwaway_cluster

SMART_DOMAIN = "mail.localhost"
_database_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from what each test says, never from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("CRMMAIL_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        _admin(cluster, "CREATE DATABASE crmmail_template")
        engine = make_engine(cluster.url("crmmail_template"))
        upgrade_to_head(engine)
        engine.dispose()
        yield cluster


def _admin(cluster: Cluster, statement: str) -> None:
    with psycopg.connect(
        host=str(cluster.socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "crmmail.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at head, on the parametrized backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "crmmail.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"test_{next(_database_numbers)}"
    _admin(cluster, f"CREATE DATABASE {name} TEMPLATE crmmail_template")
    yield cluster.url(name)
    _admin(cluster, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        smart_domains=(SMART_DOMAIN,),
        retry_base_delay=0,
        worker_idle_poll=0.05,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database.from_url(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def acme(db: Database, settings: Settings) -> int:
    """The account ``acme`` with one admin user, me@acme.test; returns its id."""
    from crmmail.services import accounts

    with db.transaction() as session:
        account = accounts.create_account(session, "acme", "Acme Inc.")
        accounts.add_user(
            session,
            "acme",
            "me@acme.test",
            name="Me Myself",
            admin=True,
            email_access=True,
            smart_domains=settings.smart_domains,
        )
        return account.id
