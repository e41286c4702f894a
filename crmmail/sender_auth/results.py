"""The RFC 8601 ``Authentication-Results`` value we record, and reading it back for the CRM.

We write ``<authserv-id>; spf=...; dkim=...; dmarc=...``; property values that are not plain
tokens are quoted, so nothing taken from the message can break the field. A message may carry
``Authentication-Results`` fields of its own; those that claim our authserv-id are forgeries
(RFC 8601 section 5) and are never read as ours: see :func:`claims_authserv_id`.
"""

import re
from dataclasses import dataclass, field

from crmmail.sender_auth.dkim_check import DkimResult
from crmmail.sender_auth.dmarc import DmarcResult
from crmmail.sender_auth.spf_check import SpfResult

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-./=?^_`{|}~@]+")
_RESINFO = re.compile(r"^\s*([a-z0-9_.-]+)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENTS = re.compile(r"\([^()]*\)")
SUMMARY_METHODS = ("spf", "dkim", "dmarc")
DKIM_PRECEDENCE = ("pass", "temperror", "fail", "permerror", "neutral", "policy", "none")


@dataclass(frozen=True)
class SenderAuthentication:
    """What the checks found about one message."""

    spf: SpfResult | None  # None: no client IP to check
    dkim: list[DkimResult] = field(default_factory=list)
    dmarc: DmarcResult = field(default_factory=lambda: DmarcResult("none", ""))

    def header_value(self, authserv_id: str) -> str:
        """The value of our ``Authentication-Results`` field."""
        parts = [_value(authserv_id), self._spf(), *self._dkim(), self._dmarc()]
        return "; ".join(parts)

    def _spf(self) -> str:
        if self.spf is None:
            return "spf=none (no client address)"
        if self.spf.identity == "helo":
            return f"spf={self.spf.result} smtp.helo={_value(self.spf.domain)}"
        return f"spf={self.spf.result} smtp.mailfrom={_value(self.spf.sender)}"

    def _dkim(self) -> list[str]:
        if not self.dkim:
            return ["dkim=none"]
        return [
            f"dkim={s.result} header.d={_value(s.domain)} header.s={_value(s.selector)}"
            for s in self.dkim
        ]

    def _dmarc(self) -> str:
        dmarc = self.dmarc
        text = f"dmarc={dmarc.result}"
        if dmarc.policy:
            text += f" (p={dmarc.policy})"
        if dmarc.from_domain:
            text += f" header.from={_value(dmarc.from_domain)}"
        return text


def _value(text: str) -> str:
    """A property value as RFC 8601 allows it: a token, else a quoted string.

    >>> _value("bob@corp.test"), _value('a "b";c')
    ('bob@corp.test', '"a \\\\"b\\\\";c"')
    """
    if text and _TOKEN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def claims_authserv_id(value: str, authserv_id: str) -> bool:
    """Whether an ``Authentication-Results`` value names ``authserv_id`` (so claims to be ours).

    >>> claims_authserv_id(" crmmail.localhost; spf=pass", "crmmail.localhost")
    True
    >>> claims_authserv_id("(c) CRMMAIL.localhost 1; dkim=pass", "crmmail.localhost")
    True
    >>> claims_authserv_id("mx.google.com; spf=pass", "crmmail.localhost")
    False
    """
    head = _COMMENTS.sub(" ", value.partition(";")[0]).split()
    return bool(head) and head[0].lower().rstrip(".") == authserv_id.lower().rstrip(".")


def split_outside_quotes(value: str) -> list[str]:
    """``value`` cut at each ``;`` that is not inside a quoted string or a comment.

    A quoted property value comes from the message (a MAIL FROM local part may hold ``;`` and
    ``dmarc=pass``); it must never read as a result of its own.

    >>> split_outside_quotes('h; spf=fail smtp.mailfrom="x;dmarc=pass"@e.test (a;b); dmarc=fail')
    ['h', ' spf=fail smtp.mailfrom="x;dmarc=pass"@e.test (a;b)', ' dmarc=fail']
    """
    parts: list[str] = []
    current: list[str] = []
    quoted, escaped, comments = False, False, 0
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comments):
            escaped = True
        elif char == '"' and not comments:
            quoted = not quoted
        elif char == "(" and not quoted:
            comments += 1
        elif char == ")" and not quoted and comments:
            comments -= 1
        elif char == ";" and not quoted and not comments:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def summary(value: str) -> dict[str, str]:
    """The result of each method in one of our values: ``{"spf": ..., "dkim": ..., "dmarc": ...}``.

    Several DKIM signatures read as the best of them (a pass wins).

    >>> summary("h; spf=pass smtp.mailfrom=a@b; dkim=fail header.d=b; dkim=pass; dmarc=pass")
    {'spf': 'pass', 'dkim': 'pass', 'dmarc': 'pass'}
    """
    found: dict[str, list[str]] = {}
    for resinfo in split_outside_quotes(value)[1:]:
        match = _RESINFO.match(resinfo)
        if match:
            found.setdefault(match.group(1).lower(), []).append(match.group(2).lower())
    result = {}
    for method in SUMMARY_METHODS:
        results = found.get(method, ["none"])
        if method == "dkim":
            known = [r for r in DKIM_PRECEDENCE if r in results]
            result[method] = known[0] if known else results[0]
        else:
            result[method] = results[0]
    return result
