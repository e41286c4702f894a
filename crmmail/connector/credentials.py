"""Mailbox secrets at rest: AES-256-GCM under a key ring, each ciphertext naming its key.

The ring is a list of 32-byte keys, URL-safe base64, the first one current: new secrets are
sealed with it, older ones still open with theirs until they are sealed again. A key's id is
the start of its SHA-256, so rotating means putting a new key first and nothing else. Each
ciphertext is bound to its owner (the mailbox) as AES-GCM associated data. Keys come
from ``CRMMAIL_SECRET_KEY`` (comma-separated), else from a key file (one key per line); for the
embedded SQLite default, ``crmmail init`` creates that file beside the database, mode 0600.
"""

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import make_url

from crmmail.config import Settings
from crmmail.errors import CrmmailError, UserInputError

KEY_BYTES = 32
NONCE_BYTES = 12
PURPOSE = "crmmail mailbox credential v1"


class SecretKeyMissing(UserInputError):
    """No key to seal or open mailbox secrets with; the message says how to provide one."""


class SecretUnreadable(CrmmailError):
    """A stored secret does not open with any key of the ring (wrong or lost key)."""


@dataclass(frozen=True)
class Sealed:
    """A secret as stored: the id of the key that sealed it and nonce + ciphertext."""

    key_id: str
    blob: bytes


def key_id(key: bytes) -> str:
    """The public name of a key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def new_key() -> str:
    """A fresh key in the ring's text form."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


class KeyRing:
    """Seals with the current key, opens with whichever key a secret names."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyMissing("the secret key ring is empty: give at least one key")
        self._current = keys[0]
        self._by_id = {key_id(key): key for key in keys}

    @classmethod
    def from_text(cls, text: str, source: str) -> "KeyRing":
        """Keys separated by commas or new lines, as in the variable or the key file."""
        parts = [part.strip() for part in text.replace(",", "\n").splitlines()]
        return cls([_decode_key(part, source) for part in parts if part])

    def seal(self, plaintext: str, owner: str) -> Sealed:
        """Encrypt for ``owner`` (e.g. ``mailbox:7``): it opens for that owner only."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self._current).encrypt(
            nonce, plaintext.encode("utf-8"), _associated(owner)
        )
        return Sealed(key_id(self._current), nonce + ciphertext)

    def open(self, sealed: Sealed, owner: str) -> str:
        key = self._by_id.get(sealed.key_id)
        if key is None:
            raise SecretUnreadable(
                f"the secret was sealed with key {sealed.key_id}, not in the ring"
            )
        nonce, ciphertext = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, _associated(owner)).decode("utf-8")
        except InvalidTag as exc:
            raise SecretUnreadable(f"the secret does not open with key {sealed.key_id}") from exc


def _associated(owner: str) -> bytes:
    """Bind a ciphertext to its row, so that a secret copied to another row does not open."""
    return f"{PURPOSE}|{owner}".encode()


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyMissing(
            f"{source} holds a key that is not 32 bytes of URL-safe base64:"
            " make one with `python -c 'import base64,os;"
            " print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`"
        )
    return key


def default_key_file(settings: Settings) -> Path | None:
    """Where the key file lives: the configured path, else beside an SQLite database."""
    if settings.secret_key_file is not None:
        return settings.secret_key_file
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).with_name(Path(url.database).name + ".key")
    return None


def load_key_ring(settings: Settings) -> KeyRing:
    """The ring from ``CRMMAIL_SECRET_KEY`` or the key file; a clear error when there is none."""
    if settings.secret_key:
        return KeyRing.from_text(settings.secret_key, "CRMMAIL_SECRET_KEY")
    path = default_key_file(settings)
    if path is not None and path.is_file():
        return KeyRing.from_text(path.read_text(encoding="ascii"), str(path))
    where = f" or create {path} with `crmmail init`" if path is not None else ""
    raise SecretKeyMissing(f"no secret key for mailbox passwords: set CRMMAIL_SECRET_KEY{where}")


def ensure_key_file(settings: Settings) -> Path | None:
    """Create the key file (mode 0600) when no key is configured; returns it when created."""
    if settings.secret_key:
        return None
    path = default_key_file(settings)
    if path is None or path.exists():
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(new_key() + "\n")
    return path
