"""The corpus messages too big or too mechanical to keep as files, built when the tests run.

The hand-written ones are ``tests/data/corpus/*.eml``; these are their deep, wide and heavy
relatives: a message forwarded as an attachment six times over, nesting past the parser's depth
limit (40 multiparts, 2,000 forwards), 600 parts, a 5 MiB attachment, a 1 MiB line of text, a
long thread's References, and a message to 300 people. Each is built in well under a second.
"""

import base64
import hashlib
from collections.abc import Callable

FROM = "From: Bo Berg <bo.berg@client.test>\r\nTo: me@acme.test\r\n"
DATE = "Date: Wed, 30 Dec 2026 10:00:00 +0000\r\n"
PDF = b"%PDF-1.4\n%built for the corpus\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
BIG_ATTACHMENT = hashlib.shake_256(b"crmmail corpus").digest(5 * 1024 * 1024)
LONG_LINE = ("All on one line, as some generators write HTML-less text. " * 19_000)[: 1024 * 1024]
RECIPIENTS = 300


def base64_lines(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def head(subject: str, message_id: str, sender: str = FROM) -> str:
    return f"{sender}Subject: {subject}\r\n{DATE}Message-ID: <{message_id}@client.test>\r\n"


def nested_forwards() -> bytes:
    """The original with a PDF, forwarded as an attachment six times: 12 levels, within limits."""
    message = (
        "From: Legal Team <legal@lawfirm.test>\r\nTo: otto@lawfirm.test\r\n"
        "Subject: The original\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        "--b0\r\nContent-Type: text/plain\r\n\r\nThe original text.\r\n"
        "--b0\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="original.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64_lines(PDF)}\r\n--b0--\r\n"
    )
    for level in range(1, 7):
        sender = f"From: Person {level} <p{level}@chain.test>\r\nTo: x@chain.test\r\n"
        if level == 6:
            sender = FROM
        message = (
            head(f"Fwd: level {level}", f"forward-{level}", sender)
            + f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="f{level}"\r\n\r\n'
            + f"--f{level}\r\nContent-Type: text/plain\r\n\r\nForward number {level}.\r\n"
            + f"--f{level}\r\nContent-Type: message/rfc822\r\n\r\n{message}\r\n--f{level}--\r\n"
        )
    return message.encode()


def multipart_40_deep() -> bytes:
    """Text on top, then 40 nested multiparts with a file at the bottom: past ``MAX_DEPTH``."""
    body = (
        'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="deep.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64_lines(PDF)}\r\n"
    )
    for level in range(40, 0, -1):
        body = (
            f'Content-Type: multipart/mixed; boundary="d{level}"\r\n\r\n'
            f"--d{level}\r\n{body}--d{level}--\r\n"
        )
    top = (
        head("Forty levels deep", "deep-40")
        + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="top"\r\n\r\n'
        + "--top\r\nContent-Type: text/plain\r\n\r\nThe text is on top.\r\n"
        + f"--top\r\n{body}--top--\r\n"
    )
    return top.encode()


def rfc822_2000_deep() -> bytes:
    """A message/rfc822 inside a message/rfc822, 2,000 times (hostile: the stack's depth)."""
    layers = "Content-Type: message/rfc822\r\n\r\n" * 2000
    return (head("Endless enclosures", "enclosed-2000") + layers + "\r\nthe bottom\r\n").encode()


def six_hundred_parts() -> bytes:
    """One text part and 599 small files: past ``MAX_PARTS`` (500)."""
    parts = ["--many\r\nContent-Type: text/plain\r\n\r\nSix hundred parts.\r\n"]
    parts += [
        f"--many\r\nContent-Type: text/csv\r\n"
        f'Content-Disposition: attachment; filename="part-{n:03d}.csv"\r\n\r\nn;{n:03d}\r\n'
        for n in range(1, 600)
    ]
    return (
        head("Six hundred parts", "parts-600")
        + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="many"\r\n\r\n'
        + "".join(parts)
        + "--many--\r\n"
    ).encode()


def big_attachment() -> bytes:
    """A 5 MiB file (7 MB of base64): kept whole, byte for byte."""
    return (
        head("The scans", "big-attachment")
        + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n'
        + "--big\r\nContent-Type: text/plain\r\n\r\nScans attached.\r\n"
        + "--big\r\nContent-Type: application/octet-stream\r\n"
        + 'Content-Disposition: attachment; filename="scans.bin"\r\n'
        + f"Content-Transfer-Encoding: base64\r\n\r\n{base64_lines(BIG_ATTACHMENT)}\r\n--big--\r\n"
    ).encode()


def one_megabyte_line() -> bytes:
    """A text body of one 1 MiB line, no line break anywhere in it."""
    return (
        head("One long line", "long-line")
        + "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        + LONG_LINE
    ).encode()


def long_thread_references() -> bytes:
    """The References of a 700-message thread, one id a line: 20 KiB, past ``MAX_FIELD_BYTES``.

    Clients fold References one id a line, so a long thread gives a long field of many lines;
    the field is cut, the fields around it (Subject after it, a folded To before it) are read.
    """
    received = "".join(
        f"Received: from relay{n}.client.test (relay{n}.client.test [192.0.2.{n}])\r\n"
        f"\tby relay{n + 1}.client.test; Wed, 30 Dec 2026 09:59:{n:02d} +0000\r\n"
        for n in range(30)
    )
    references = "\r\n ".join(f"<thread-{n:04d}@client.test>" for n in range(700))
    return (
        received
        + "From: Bo Berg <bo.berg@client.test>\r\n"
        + "To: me@acme.test,\r\n\tKai Wong <kai@client.test>\r\n"
        + f"{DATE}Message-ID: <thread-0700@client.test>\r\n"
        + f"In-Reply-To: <thread-0699@client.test>\r\nReferences: {references}\r\n"
        + "Subject: Re: the long thread\r\nContent-Type: text/plain\r\n\r\nThe 701st message.\r\n"
    ).encode()


def three_hundred_recipients() -> bytes:
    """A message to 300 people: more than the loop guard lets one sender create in an hour."""
    to = ",\r\n ".join(f"Person {n} <person{n:03d}@many.test>" for n in range(RECIPIENTS))
    return (
        f"From: Bo Berg <bo.berg@client.test>\r\nTo: {to}\r\nSubject: To everyone\r\n{DATE}"
        "Message-ID: <everyone@client.test>\r\nContent-Type: text/plain\r\n\r\nHello all.\r\n"
    ).encode()


BUILT: dict[str, Callable[[], bytes]] = {
    "nested-forwards": nested_forwards,
    "multipart-40-deep": multipart_40_deep,
    "rfc822-2000-deep": rfc822_2000_deep,
    "six-hundred-parts": six_hundred_parts,
    "big-attachment": big_attachment,
    "one-megabyte-line": one_megabyte_line,
    "long-thread-references": long_thread_references,
    "three-hundred-recipients": three_hundred_recipients,
}
