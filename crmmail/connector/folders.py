"""Which server folders are Inbox and Sent: RFC 6154 ``\\Sent`` first, then well-known names.

Names are compared whole (after the hierarchy prefix), so "Sent" never matches "Sent-Archive"
or "Unsent". The user's own choice (``--sent-folder``) beats both.
"""

from dataclasses import dataclass

SENT_NAMES = (
    "sent",
    "sent items",
    "sent mail",
    "sent messages",
    "[gmail]/sent mail",
    "[google mail]/sent mail",
    "gesendet",
    "gesendete elemente",
    "gesendete objekte",
    "envoyés",
    "éléments envoyés",
    "messages envoyés",
    "enviados",
    "elementos enviados",
    "inviata",
    "posta inviata",
    "verzonden",
    "verzonden items",
    "skickat",
    "skickade objekt",
    "sendt",
    "sendte elementer",
    "lähetetyt",
    "wysłane",
    "elementy wysłane",
    "odeslaná pošta",
    "enviadas",
    "itens enviados",
    "отправленные",
    "送信済みアイテム",
    "已发送",
)


@dataclass(frozen=True)
class Folder:
    """One entry of the server's LIST: its flags (lower-case, with backslash) and full name."""

    flags: frozenset[str]
    delimiter: str
    name: str

    @property
    def leaf(self) -> str:
        """The name without an ``INBOX.`` style parent, for matching by name."""
        if self.delimiter and self.name.upper().startswith("INBOX" + self.delimiter):
            return self.name[len("INBOX") + len(self.delimiter) :]
        return self.name

    @property
    def selectable(self) -> bool:
        return "\\noselect" not in self.flags and "\\nonexistent" not in self.flags


def find_sent(folders: list[Folder], override: str | None = None) -> str | None:
    """The Sent folder's name, or ``None`` when the box has none we can recognise.

    >>> boxes = [Folder(frozenset(), "/", "Sent-Archive"), Folder(frozenset(), "/", "Gesendet")]
    >>> find_sent(boxes)
    'Gesendet'
    >>> find_sent([*boxes, Folder(frozenset({"\\\\sent"}), "/", "Outbox2")])
    'Outbox2'
    >>> find_sent([Folder(frozenset(), ".", "INBOX.Sent Items")])
    'INBOX.Sent Items'
    >>> find_sent(boxes, override="Sent-Archive")
    'Sent-Archive'
    >>> find_sent([Folder(frozenset(), "/", "Unsent")]) is None
    True
    """
    selectable = [folder for folder in folders if folder.selectable]
    if override is not None:
        return next((f.name for f in selectable if f.name == override), None)
    for folder in selectable:
        if "\\sent" in folder.flags:
            return folder.name
    by_name = {folder.leaf.casefold(): folder.name for folder in selectable}
    by_name.update({folder.name.casefold(): folder.name for folder in selectable})
    for name in SENT_NAMES:
        if name in by_name:
            return by_name[name]
    return None
