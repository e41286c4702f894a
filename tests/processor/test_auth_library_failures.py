"""A check library that crashes on some input gives ``permerror``, never a dead message."""

import dkim
import pytest
import spf

from crmmail.sender_auth.check import check_sender
from crmmail.sender_auth.lookup import DnsLookup


def test_a_crashing_spf_or_dkim_library_reads_permerror(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise IndexError("a bug in the library")

    monkeypatch.setattr(spf.query, "check", crash)
    monkeypatch.setattr(dkim.DKIM, "verify", crash)
    raw = b"DKIM-Signature: v=1; d=corp.test; s=sel; b=x; bh=y\r\nFrom: a@corp.test\r\n\r\nhi\r\n"
    result = check_sender(
        DnsLookup(None), raw, "192.0.2.1:25", "mx.corp.test", "bob@corp.test", ["corp.test"]
    )
    assert result.spf is not None and result.spf.result == "permerror"
    assert [signature.result for signature in result.dkim] == ["permerror"]
    assert result.dmarc.result == "temperror"  # no resolver: the DMARC record cannot be read
