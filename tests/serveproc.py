"""Real ``crmmail serve`` (and ``crmmail process``) subprocesses for tests, and a raw SMTP client.

The process writes its output (the start-up lines and the log) to a file rather than a pipe: a
pipe nobody reads fills up under load and would freeze the server it is meant to observe.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

LISTENING = re.compile(r"SMTP on 127\.0\.0\.1:(\d+)")
HTTP_LISTENING = re.compile(r"HTTP on 127\.0\.0\.1:(\d+)")
START_DEADLINE = 60.0  # seconds for a server to print that it listens
STOP_DEADLINE = 30.0  # seconds for a signalled server to exit


def crmmail_argv(database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "crmmail", "--database-url", database_url, *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` when time runs out."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.05)


class ServeProcess:
    """A running ``crmmail serve``: its process, SMTP port, optional HTTP port and output."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        port: int = 0,
        http_port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"serve-{time.monotonic_ns()}.log"
        args = ["serve", "--smtp-host", "127.0.0.1", "--smtp-port", str(port)]
        if http_port is not None:
            args += ["--http-port", str(http_port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                crmmail_argv(database_url, *args),
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    # Far longer than any wait in the tests: mail is processed because the intake
                    # wakes the worker, not because the worker happens to poll.
                    "CRMMAIL_WORKER_IDLE_POLL": "600",
                    "CRMMAIL_SMTP_PORT": "1",  # the --smtp-port flag wins over the environment
                    **(env or {}),
                },
            )
        self.port = int(self._started(LISTENING))
        self.http_port = int(self._started(HTTP_LISTENING)) if http_port is not None else None

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _started(self, pattern: re.Pattern[str]) -> str:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            match = pattern.search(self.output())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"crmmail serve did not start:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine or the OOM killer stops it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_DEADLINE)

    def terminate(self) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_DEADLINE)


@contextmanager
def running_serve(
    database_url: str,
    workdir: Path,
    *,
    port: int = 0,
    http_port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServeProcess]:
    """``crmmail serve`` for the block; killed at the end if still running."""
    serve = ServeProcess(database_url, workdir, port=port, http_port=http_port, env=env)
    try:
        yield serve
    finally:
        serve.kill()


def run_cli(database_url: str, workdir: Path, *args: str, **env: str) -> str:
    """Run one ``crmmail`` command to completion; its stdout (fails the test on an error)."""
    result = subprocess.run(
        crmmail_argv(database_url, *args),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class RawSmtp:
    """A hand-driven SMTP client, to stop the server (or itself) at exact points of a session."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.replies = self.sock.makefile("rb")
        assert self.reply().startswith(b"220")

    def reply(self) -> bytes:
        lines = [self.replies.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.replies.readline())
        return lines[-1]

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.replies.close()
        self.sock.close()
