"""A real Dovecot IMAP server on loopback for tests, with its own config, users and maildirs.

Layout. The config, the password dict and the log go into the caller's ``tmp_dir``. Sockets
(``base_dir``), state and the maildirs go into a short private directory under the system temp
dir, because Unix socket paths are limited to 107 bytes and because, under root, the mail
processes run as an unprivileged user that cannot enter pytest's 0700 temp directories.

Users. Dovecot refuses to run login processes or mail sessions as root. Run as root (as in CI),
the master and the auth workers (which read the password dict) run as root, login processes as
``dovenull`` chrooted into ``base_dir``, and internal services, mail sessions and ``doveadm``'s
mailbox commands as ``dovecot``, which owns the maildirs. Run as anyone else, every process runs
as that user.

Listeners. ``ssl_port`` speaks implicit TLS; ``starttls_port`` speaks plain IMAP and, with
``ssl = required``, advertises LOGINDISABLED until STARTTLS. Dovecot counts a connection whose
remote and local IPs are equal as secure, so its plain listener sits on 127.0.0.2 behind a small
relay on 127.0.0.1 (see :class:`_Relay`). Certificates come from a :class:`~tests.tlsca.TestCA`.

Speed. Start and stop take about 0.1 s each, no auth penalties (a wrong password costs 0.5 s,
Dovecot's failure flush interval), fsync off, 500 messages append in one MULTIAPPEND in ~0.2 s.

Passwords live in a file dict that is replaced on every change, so ``add_user`` and
``set_password`` take effect at the next login while the server runs.
"""

import grp
import json
import os
import pwd
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from string import Template
from types import MappingProxyType

from imapclient import IMAPClient

from tests.tlsca import TestCA

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
HOST = "localhost"
LISTEN_ADDRESS = "127.0.0.1"
PLAIN_ADDRESS = "127.0.0.2"  # Dovecot's own STARTTLS listener, reached through _Relay
RELAY_CHUNK = 65536
RECENT = b"\\Recent"
MAIL_USER_UNDER_ROOT = "dovecot"
LOGIN_USER_UNDER_ROOT = "dovenull"
MAX_CONNECTIONS_PER_USER = 50
START_TIMEOUT = 10.0
# Mailbox name -> special-use flag (RFC 6154). Dovecot 2.3 cannot set one over IMAP, so the
# instance's config decides; a mailbox still exists only once created (auto = no).
DEFAULT_SPECIAL_USE: Mapping[str, str] = MappingProxyType(
    {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash"}
)
STOP_TIMEOUT = 5.0
GRACE = 0.1  # time the master gets to stop its children alone

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]")

# passwd-file would be simpler, but Dovecot stats it at most once a second, so a password changed
# right after a login would go unnoticed; the file dict is re-opened whenever its inode changes.
_DICT_AUTH = Template(
    """uri = file:$passwords_file
default_pass_scheme = PLAIN
iterate_disable = yes
key passdb {
  key = passdb/%u
  format = json
}
passdb_objects = passdb
"""
)

_CONFIG = Template(
    r"""# Written by tests/dovecot.py for one test run.
instance_name = crmmail-test-$port
base_dir = $base_dir
state_dir = $state_dir
log_path = $log_file
info_log_path = $log_file
protocols = imap
listen = $listen
shutdown_clients = yes

default_login_user = $login_user
default_internal_user = $internal_user
default_internal_group = $internal_group
first_valid_uid = $mail_uid
last_valid_uid = $mail_uid
first_valid_gid = $mail_gid
last_valid_gid = $mail_gid

ssl = required
ssl_cert = <$cert_file
ssl_key = <$key_file
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 0
auth_verbose = yes

mail_location = maildir:$mail_dir/%u
mail_fsync = never
mail_max_userip_connections = $max_connections

passdb {
  driver = dict
  args = $dict_auth_file
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$mail_dir/%u
}

namespace inbox {
  inbox = yes
  separator = /
$mailboxes}

service imap-login {
  chroot = $login_chroot
  inet_listener imap {
    address = $plain_listen
    port = $plain_port
  }
  inet_listener imaps {
    address = $listen
    port = $ssl_port
    ssl = yes
  }
}
service anvil {
  chroot = $anvil_chroot
  # Without this socket the auth process runs without penalties (no growing wrong-password delay).
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
"""
)


@dataclass(frozen=True)
class _Identity:
    """Who Dovecot's processes run as."""

    login_user: str
    internal_user: str
    internal_group: str
    mail_uid: int
    mail_gid: int
    chroot: bool


def _identity() -> _Identity:
    if os.geteuid() == 0:
        mail = pwd.getpwnam(MAIL_USER_UNDER_ROOT)
        return _Identity(
            LOGIN_USER_UNDER_ROOT,
            MAIL_USER_UNDER_ROOT,
            _group_name(mail.pw_gid),
            mail.pw_uid,
            mail.pw_gid,
            True,
        )
    me = pwd.getpwuid(os.geteuid())
    return _Identity(me.pw_name, me.pw_name, _group_name(os.getegid()), me.pw_uid, me.pw_gid, False)


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def _write_passwords(path: Path, passwords: Mapping[str, str]) -> None:
    """Replace the file dict (key line, value line) by a new file, so Dovecot re-reads it."""
    lines = []
    for email, password in passwords.items():
        lines += [f"shared/passdb/{email}", json.dumps({"password": f"{{PLAIN}}{password}"})]
    fresh = path.with_name(path.name + ".new")
    fresh.write_text("".join(f"{line}\n" for line in lines))
    fresh.replace(path)


def _uids(uid_set: bytes) -> list[int]:
    """``b"4:6,9"`` -> ``[4, 5, 6, 9]``."""
    uids: list[int] = []
    for part in uid_set.split(b","):
        first, _, last = part.partition(b":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


@dataclass
class Dovecot:
    """A running Dovecot: where to connect, and ways to arrange a mailbox for a test."""

    ssl_port: int
    starttls_port: int
    ca_file: Path
    config_file: Path
    passwords_file: Path
    log_file: Path
    mail_dir: Path
    host: str = HOST
    _passwords: dict[str, str] = field(default_factory=dict, repr=False)

    # -- users ---------------------------------------------------------------------------------

    def add_user(self, email: str, password: str) -> None:
        """Add a user who can log in with ``email`` and ``password`` (works while running)."""
        if email in self._passwords:
            raise ValueError(f"user {email} exists already")
        self._write_password(email, password)

    def set_password(self, email: str, password: str) -> None:
        """Change an existing user's password; the next login must use the new one."""
        if email not in self._passwords:
            raise KeyError(email)
        self._write_password(email, password)

    def _write_password(self, email: str, password: str) -> None:
        if any(char in email + password for char in "\t\r\n"):
            raise ValueError("the password dict cannot hold tabs or line breaks")
        self._passwords[email] = password
        _write_passwords(self.passwords_file, self._passwords)

    # -- IMAP as the user ----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this server's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextmanager
    def login(self, email: str) -> Iterator[IMAPClient]:
        """An IMAPClient logged in as ``email`` over implicit TLS; logs out afterwards."""
        client = IMAPClient(
            self.host, self.ssl_port, ssl=True, ssl_context=self.ssl_context(), timeout=10
        )
        try:
            client.login(email, self._passwords[email])
            yield client
        finally:
            _close(client)

    def create_mailbox(self, email: str, name: str) -> None:
        """Create a mailbox, e.g. ``"Sent"``, ``"Gesendet"``, or ``"Sent Items"``.

        It carries a special-use flag only if the instance was started with one for that name.
        """
        with self.login(email) as client:
            client.create_folder(name)

    def append(
        self,
        email: str,
        mailbox: str,
        raw: bytes,
        flags: Sequence[str | bytes] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """Append one message and return its UID."""
        dates = None if internal_date is None else [internal_date]
        return self.append_many(email, mailbox, [raw], flags, dates)[0]

    def append_many(
        self,
        email: str,
        mailbox: str,
        messages: Sequence[bytes],
        flags: Sequence[str | bytes] = (),
        internal_dates: Sequence[datetime] | None = None,
    ) -> list[int]:
        """Append messages in one MULTIAPPEND command; return their UIDs in order."""
        if internal_dates is not None and len(internal_dates) != len(messages):
            raise ValueError("need one internal date per message")
        items: list[dict[str, object]] = []
        for index, raw in enumerate(messages):
            item: dict[str, object] = {"msg": raw, "flags": tuple(flags)}
            if internal_dates is not None:
                item["date"] = internal_dates[index]
            items.append(item)
        with self.login(email) as client:
            _, data = client.multiappend(mailbox, items)
        response = b" ".join(line for line in data if isinstance(line, bytes))
        match = _APPENDUID.search(response)
        if match is None:
            raise RuntimeError(f"no APPENDUID in {response!r}")
        uids = _uids(match.group(2))
        if len(uids) != len(messages):
            raise RuntimeError(f"APPENDUID {match.group(0)!r} for {len(messages)} messages")
        return uids

    def flags(self, email: str, mailbox: str) -> dict[int, tuple[bytes, ...]]:
        """UID -> flags of every message, read without changing them (EXAMINE).

        ``\\Recent`` is left out: it belongs to whichever session saw the message first.
        """
        with self.login(email) as client:
            client.select_folder(mailbox, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            fetched = client.fetch(uids, ["FLAGS"])
        return {
            int(uid): tuple(flag for flag in data[b"FLAGS"] if flag != RECENT)
            for uid, data in fetched.items()
        }

    def expunge(self, email: str, mailbox: str, uids: Iterable[int]) -> None:
        """Delete and expunge these UIDs."""
        wanted = list(uids)
        with self.login(email) as client:
            client.select_folder(mailbox)
            client.delete_messages(wanted)
            client.uid_expunge(wanted)

    def status(self, email: str, mailbox: str) -> dict[bytes, int]:
        """STATUS of a mailbox: MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN."""
        with self.login(email) as client:
            result = client.folder_status(
                mailbox, [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"]
            )
        return {key: int(value) for key, value in result.items()}

    # -- doveadm -------------------------------------------------------------------------------

    def set_uidvalidity(self, email: str, mailbox: str, value: int) -> None:
        """Give a mailbox a new UIDVALIDITY, as a server that rebuilt its index would."""
        self.doveadm("mailbox", "update", "-u", email, "--uid-validity", str(value), mailbox)

    def connections(self, email: str) -> int:
        """How many IMAP sessions ``email`` has open now (``doveadm who``)."""
        output = self.doveadm("-f", "tab", "who", "-1", email)
        lines = [line for line in output.splitlines()[1:] if line.strip()]
        return len(lines)

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm`` against this instance's config; return its stdout."""
        done = subprocess.run(
            [DOVEADM, "-c", str(self.config_file), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def log_text(self) -> str:
        """Everything Dovecot logged so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (OSError, IMAPClient.Error):
        client.shutdown()


@contextmanager
def running_dovecot(
    tmp_dir: Path, ca: TestCA, special_use: Mapping[str, str] = DEFAULT_SPECIAL_USE
) -> Iterator[Dovecot]:
    """Start Dovecot in the foreground, wait until it accepts connections, stop it afterwards.

    ``special_use`` maps mailbox names to the flag LIST shows for them once created, e.g.
    ``{"Gesendet": "\\Sent"}`` for a German provider, or ``{}`` for a server without SPECIAL-USE.
    """
    if not Path(DOVECOT).exists():
        raise RuntimeError(f"{DOVECOT} not found: run scripts/ensure-test-services")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        runtime = Path(tempfile.mkdtemp(prefix="crmmail-dovecot-"))
        stack.callback(shutil.rmtree, runtime, ignore_errors=True)
        plain_port = _free_port(PLAIN_ADDRESS)
        relay = stack.enter_context(_running_relay((PLAIN_ADDRESS, plain_port)))
        who = _identity()
        server = _configure(tmp_dir, runtime, ca, who, relay.port)
        _write_config(server, runtime, ca, who, special_use, plain_port)
        process = _start(server)
        stack.callback(_stop, process)
        _wait_until_ready(process, server, [relay.target])
        yield server


def _configure(
    tmp_dir: Path,
    runtime: Path,
    ca: TestCA,
    who: _Identity,
    starttls_port: int,
) -> Dovecot:
    mail_dir = runtime / "mail"
    mail_dir.mkdir()
    runtime.chmod(0o755)
    os.chown(mail_dir, who.mail_uid, who.mail_gid)
    server = Dovecot(
        ssl_port=_free_port(LISTEN_ADDRESS),
        starttls_port=starttls_port,
        ca_file=ca.ca_file,
        config_file=tmp_dir / "dovecot.conf",
        passwords_file=tmp_dir / "passwords.dict",
        log_file=tmp_dir / "dovecot.log",
        mail_dir=mail_dir,
    )
    _write_passwords(server.passwords_file, {})
    return server


def _write_config(
    server: Dovecot,
    runtime: Path,
    ca: TestCA,
    who: _Identity,
    special_use: Mapping[str, str],
    plain_port: int,
) -> None:
    dict_auth = server.config_file.with_name("dict-auth.conf.ext")
    dict_auth.write_text(_DICT_AUTH.substitute(passwords_file=server.passwords_file))
    server.config_file.write_text(
        _CONFIG.substitute(
            port=server.ssl_port,
            base_dir=runtime / "run",
            state_dir=runtime / "state",
            log_file=server.log_file,
            listen=LISTEN_ADDRESS,
            login_user=who.login_user,
            internal_user=who.internal_user,
            internal_group=who.internal_group,
            mail_uid=who.mail_uid,
            mail_gid=who.mail_gid,
            cert_file=ca.cert_file,
            key_file=ca.key_file,
            mail_dir=server.mail_dir,
            max_connections=MAX_CONNECTIONS_PER_USER,
            dict_auth_file=server.config_file.with_name("dict-auth.conf.ext"),
            plain_listen=PLAIN_ADDRESS,
            plain_port=plain_port,
            ssl_port=server.ssl_port,
            login_chroot="login" if who.chroot else "",
            anvil_chroot="empty" if who.chroot else "",
            mailboxes=_mailbox_blocks(special_use),
        )
    )


def _mailbox_blocks(special_use: Mapping[str, str]) -> str:
    blocks = []
    for name, flag in special_use.items():
        if '"' in name or "\\" in name:
            raise ValueError(f"mailbox name {name!r} cannot go into dovecot.conf")
        blocks.append(f'  mailbox "{name}" {{\n    special_use = {flag}\n  }}\n')
    return "".join(blocks)


def _start(server: Dovecot) -> subprocess.Popen[bytes]:
    with server.log_file.open("ab") as log:
        return subprocess.Popen(
            [DOVECOT, "-F", "-c", str(server.config_file)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, for _stop
            stdout=log,
            stderr=log,
        )


def _wait_until_ready(
    process: subprocess.Popen[bytes], server: Dovecot, addresses: list[tuple[str, int]]
) -> None:
    """Wait for an IMAP greeting on each address: imap-login greets once auth is up."""
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(addresses)
    while waiting:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited with {process.returncode}:\n{server.log_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot was not ready within {START_TIMEOUT}s")
        if _greets(waiting[0]):
            waiting.pop(0)
        else:
            time.sleep(0.02)


def _greets(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2) as probe:
            return probe.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master; then its process group, since its log process lingers for ~1 s."""
    process.terminate()
    try:
        process.wait(GRACE)
        return
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(group: int, signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # every process of the group has exited already
        os.killpg(group, signum)


class _Relay:
    """Forwards TCP connections from ``127.0.0.1:port`` to ``target``, from one thread.

    Dovecot treats a connection whose remote and local IPs are equal as secure and then allows
    LOGIN without TLS. Its plain listener therefore sits on another loopback address, and
    clients reach it through this relay, so Dovecot sees 127.0.0.1 -> 127.0.0.2.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server((LISTEN_ADDRESS, 0))
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dovecot-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                if key.data is None:
                    self._accept()
                else:
                    self._forward(key.fileobj, key.data)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:  # the client gave up before we got to it
            return
        try:
            upstream = socket.create_connection(self.target, source_address=(LISTEN_ADDRESS, 0))
        except OSError:  # Dovecot is gone: refuse the client the same way
            client.close()
            return
        self._selector.register(client, selectors.EVENT_READ, upstream)
        self._selector.register(upstream, selectors.EVENT_READ, client)

    def _forward(self, source: socket.socket, sink: socket.socket) -> None:
        if source.fileno() == -1:  # closed earlier in this round, together with its peer
            return
        if _pass_on(source, sink):
            return
        for end in (source, sink):
            self._selector.unregister(end)
            end.close()


def _pass_on(source: socket.socket, sink: socket.socket) -> bool:
    """Copy what ``source`` has to ``sink``; False once either end has closed or reset."""
    try:
        data = source.recv(RELAY_CHUNK)
        if data:
            sink.sendall(data)
    except OSError:
        return False
    return bool(data)


@contextmanager
def _running_relay(target: tuple[str, int]) -> Iterator[_Relay]:
    relay = _Relay(target)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
