"""Stop and start a dedicated throwaway PostgreSQL cluster (tests/pgcluster.py) in mid-test."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from crmmail.storage.database import make_engine
from crmmail.storage.migrate import upgrade_to_head
from tests.pgcluster import Cluster, _binary, _run_as, throwaway_cluster

DATABASE = "crmmail"


@contextmanager
def dedicated_database() -> Iterator[tuple[Cluster, str]]:
    """A cluster of its own (so stopping it harms no other test) with a database at head.

    The suite's clusters run with ``synchronous_commit=off``, which loses the last commits in a
    crash by design; this one is restarted with it on (the default), as production runs, so a
    ``-m immediate`` stop loses nothing that was committed. ``fsync=off`` stays: the machine
    does not crash here, only PostgreSQL, and the kernel keeps what was written.
    """
    with throwaway_cluster() as cluster:
        stop(cluster, "fast")
        start(cluster)
        with psycopg.connect(
            host=str(cluster.socket_dir), user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        engine = make_engine(cluster.url(DATABASE))
        upgrade_to_head(engine)
        engine.dispose()
        yield cluster, cluster.url(DATABASE)


def stop(cluster: Cluster, mode: str) -> None:
    """``pg_ctl stop -m fast`` (clients are disconnected) or ``immediate`` (as a crash)."""
    _pg_ctl(cluster, "-m", mode, "-w", "stop")


def start(cluster: Cluster) -> None:
    options = f"-k {cluster.socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=200"
    log = cluster.socket_dir.parent / "log"
    _pg_ctl(cluster, "-l", str(log), "-o", options, "-w", "start")


def _pg_ctl(cluster: Cluster, *args: str) -> None:
    data = cluster.socket_dir.parent / "data"
    subprocess.run(
        [*_run_as(), _binary("pg_ctl"), "-D", str(data), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
