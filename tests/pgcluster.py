"""A throwaway PostgreSQL cluster for the test session: initdb + pg_ctl on a Unix socket.

initdb refuses to run as root, so under root the cluster runs as an unprivileged user (the
``postgres`` user of the Debian package, else ``nobody``). Durability settings are off unless
asked for: the suite's cluster holds test data only.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: run `make test`, which installs PostgreSQL")
    return candidates[-1]


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@dataclass(frozen=True)
class Cluster:
    """A running cluster reachable through its socket directory."""

    socket_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"


@contextmanager
def throwaway_cluster(durable: bool = False) -> Iterator[Cluster]:
    """A cluster in a temporary directory, removed afterwards.

    Tests do without durability (fsync, synchronous commit, full page writes: off); a
    ``durable`` cluster keeps PostgreSQL's defaults, for benchmarks that must pay for the flush.
    """
    base = Path(tempfile.mkdtemp(prefix="crmmail-pg-"))
    data, sockets, log = base / "data", base / "sock", base / "log"
    sockets.mkdir()
    prefix = _run_as()
    if prefix:
        owner = pwd.getpwnam(prefix[2])
        base.chmod(0o755)
        for path in (base, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        [
            *prefix,
            _binary("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",  # initdb's own files: the cluster's durability is set below
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-k {sockets} -c listen_addresses='' -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        [*prefix, _binary("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield Cluster(sockets)
    finally:
        subprocess.run(
            [*prefix, _binary("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(base, ignore_errors=True)
