"""What an operator meets first, in real ``crmmail`` processes: every mistake is one line.

A bad database URL, an address ``serve`` cannot listen on, a database that refuses writes: each
is one line on stderr saying what is wrong and what to do, a non-zero exit, no traceback, and
nothing half-made. A bare group prints its help as click does; ``--version`` answers.
"""

import importlib.metadata
import os
import smtplib
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from tests.intake import message, send
from tests.serveproc import run_cli, running_serve
from tests.test_cli import run_crmmail

SECRET = "s3cret-pw"
READ_ONLY = "ALTER DATABASE {} SET default_transaction_read_only = on"
WRITABLE = "ALTER DATABASE {} RESET default_transaction_read_only"


def one_error_line(result: subprocess.CompletedProcess[str], exit_code: int = 1) -> str:
    """The single ``crmmail: error:`` line of a failed command (its text after the prefix)."""
    assert result.returncode == exit_code, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("crmmail: error: "), result.stderr
    return line.removeprefix("crmmail: error: ")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:99999/crm", "port 99999 is not between"),
        (f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:54x2/crm", "invalid database URL"),
        (f"postgresql://crm:{SECRET}@[::1/crm", "invalid database URL"),
        ("sqlite://", "names no file: use sqlite:///PATH"),
        ("sqlite:///:memory:", "names no file: use sqlite:///PATH"),
        ("sqlite:///crmmail.db?mode=ro", "crmmail sets SQLite's options itself"),
        ("sqlite+pysqlcipher:///crmmail.db", "unsupported SQLite driver"),
        ("sqlite:////proc/no/such/dir/crmmail.db", "no directory /proc/no/such/dir"),
        ("sqlite:////tmp", "/tmp is a directory"),
    ],
)
def test_a_bad_database_url_is_one_line_and_creates_nothing(
    tmp_path: Path, url: str, said: str
) -> None:
    env = {**os.environ, "CRMMAIL_DATABASE_URL": url}
    line = one_error_line(run_crmmail("init", cwd=tmp_path, env=env))
    assert said in line
    assert SECRET not in line
    assert list(tmp_path.iterdir()) == []


def chattr(flag: str, path: Path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


@contextmanager
def refusing_writes(backend: str, database_url: str) -> Iterator[None]:
    """The database answers reads and refuses writes, even to root, for the block.

    SQLite: the file made immutable (root writes through ``chmod a-w``). PostgreSQL: the
    database set read-only for new sessions, as a standby or an operator's mistake would be.
    """
    if backend == "sqlite":
        path = Path(make_url(database_url).database or "")
        chattr("+i", path)
        try:
            yield
        finally:
            chattr("-i", path)
        return
    url = make_url(database_url)
    host = url.query["host"]
    name = url.database
    assert isinstance(host, str) and name is not None
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as pg:
        pg.execute(sql.SQL(READ_ONLY).format(sql.Identifier(name)))
        try:
            yield
        finally:
            pg.execute(sql.SQL(WRITABLE).format(sql.Identifier(name)))


def test_init_on_a_database_that_refuses_writes_fails_and_serve_warns(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run_cli(database_url, work, "account", "create", "acme")
    key_file = Path(f"{make_url(database_url).database}.key")  # where SQLite's key would go
    with refusing_writes(backend, database_url):
        line = one_error_line(run_crmmail("--database-url", database_url, "init", cwd=work))
        assert "refuses writes" in line and "make it writable" in line
        assert list(work.iterdir()) == [] and not key_file.exists()

        # serve still starts (the database may come back, as the durability tests show) but
        # says why every message will get 451
        with running_serve(database_url, work) as serve:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(serve.port, message(), ["acme@mail.localhost"])
            warnings = [line for line in serve.output().splitlines() if "warning" in line]
    assert refused.value.smtp_code == 451
    [warning] = warnings
    assert warning.startswith("crmmail: warning: the database ") and "refuses writes" in warning
    assert warning.endswith("until then every message is answered 451 (try again later)")
    ready = run_crmmail("--database-url", database_url, "init", cwd=work)
    assert ready.stdout.startswith("database ready")


def test_init_in_a_directory_that_refuses_new_files_is_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    chattr("+i", directory)
    try:
        result = run_crmmail(
            "--database-url", f"sqlite:///{directory}/crmmail.db", "init", cwd=tmp_path
        )
        assert list(directory.iterdir()) == []
    finally:
        chattr("-i", directory)
    assert "cannot open or create the database file" in one_error_line(result)


def test_serve_on_an_address_it_cannot_have_is_one_line(database_url: str, tmp_path: Path) -> None:
    def serve(*args: str) -> str:
        result = run_crmmail("--database-url", database_url, "serve", *args, cwd=tmp_path)
        return one_error_line(result)

    assert serve("--smtp-host", "999.1.1.1", "--smtp-port", "0") == (
        "cannot listen on 999.1.1.1:0: not an address of this machine, nor a name it resolves:"
        " set CRMMAIL_SMTP_HOST (--smtp-host) to one of its addresses"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve("--smtp-host", "127.0.0.1", "--smtp-port", str(port)) == (
            f"cannot listen on 127.0.0.1:{port}: Address already in use: another process listens"
            " there: stop it or set CRMMAIL_SMTP_PORT (--smtp-port)"
        )
        line = serve("--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-port", str(port))
        assert line.startswith(f"cannot listen on 127.0.0.1:{port}: Address already in use")
        assert "CRMMAIL_HTTP_PORT (--http-port)" in line


@pytest.mark.parametrize("group", [[], ["contact"], ["email"]])
def test_a_bare_group_prints_its_help_not_an_error(tmp_path: Path, group: list[str]) -> None:
    result = run_crmmail(*group, cwd=tmp_path)
    assert result.returncode == 2  # as click answers a missing command
    assert result.stdout == ""
    assert result.stderr.startswith(f"Usage: {' '.join(['crmmail', *group])} [OPTIONS] COMMAND")
    assert "Commands:" in result.stderr and "error" not in result.stderr


def test_version(tmp_path: Path) -> None:
    result = run_crmmail("--version", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"crmmail, version {importlib.metadata.version('crmmail')}\n"
