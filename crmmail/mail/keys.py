"""The identity of a message within an account, shared by the dedupe ledger, notes and emails."""


def message_key(message_id: str | None, sha256: str) -> str:
    """The identity of a message within an account: its Message-ID, else its content hash.

    >>> message_key("abc@x.test", "00ff"), message_key(None, "00ff")
    ('mid:abc@x.test', 'sha256:00ff')
    """
    return f"mid:{message_id}" if message_id else f"sha256:{sha256}"
