"""DKIM (RFC 6376): verify each signature of a message with dkimpy, keys looked up through ours.

dkimpy turns a key lookup that fails into a plain ``False``; the lookup function here notes a
DNS failure so that the signature reads ``temperror`` rather than ``fail``.
"""

import logging
from dataclasses import dataclass

import dkim

from crmmail.sender_auth.lookup import DnsLookup, DnsTemporaryError

MAX_SIGNATURES = 5  # more than this is abuse; the first ones decide
DKIM_SIGNATURE = b"dkim-signature"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DkimResult:
    """One signature's result and its signing domain (``d=``)."""

    result: str  # pass fail temperror permerror
    domain: str
    selector: str


def verify_dkim(lookup: DnsLookup, raw: bytes) -> list[DkimResult]:
    """The result of each DKIM signature (the first MAX_SIGNATURES); ``[]`` when unsigned."""
    try:
        verifier = dkim.DKIM(raw, logger=log)
    except dkim.DKIMException:
        return []
    count = sum(1 for name, _ in verifier.headers if name.lower() == DKIM_SIGNATURE)
    return [_verify_one(lookup, raw, index) for index in range(min(count, MAX_SIGNATURES))]


def _verify_one(lookup: DnsLookup, raw: bytes, index: int) -> DkimResult:
    failed_dns: list[str] = []

    def txt(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            records = lookup.txt(text)
        except DnsTemporaryError as error:
            failed_dns.append(str(error))
            raise dkim.DnsTimeoutError(str(error)) from None
        return records[0] if records else None

    verifier = dkim.DKIM(raw, logger=log)
    try:
        good = verifier.verify(idx=index, dnsfunc=txt)
    except dkim.DKIMException as error:
        if "body hash mismatch" in str(error):  # the body was changed after signing
            return DkimResult("fail", *_signer(verifier))
        log.info("DKIM signature %d unusable: %s", index, error)  # malformed signature or key
        return DkimResult("permerror", *_signer(verifier))
    if good:
        result = "pass"
    elif failed_dns:
        result = "temperror"
    else:
        result = "fail"
    return DkimResult(result, *_signer(verifier))


def _signer(verifier: dkim.DKIM) -> tuple[str, str]:
    """The ``d=`` and ``s=`` of the signature last looked at, or empty when unreadable."""
    signature = verifier.signature_fields or {}
    return _text(signature.get(b"d", b"")).lower(), _text(signature.get(b"s", b""))


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
