"""What a refused login means: a wrong password stops the box, a temporary refusal does not."""

import smtplib

import pytest
from imapclient.exceptions import LoginError

from crmmail.connector import imap, smtp
from crmmail.connector.errors import AuthFailed, ConnectorError, Transient


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("[AUTHENTICATIONFAILED] Authentication failed.", AuthFailed),
        ("[UNAVAILABLE] Temporary authentication failure.", Transient),
        ("[LIMIT] Too many connections", Transient),
        ("[INUSE] Mailbox locked", Transient),
    ],
)
def test_imap_login_refusals(answer: str, expected: type[ConnectorError]) -> None:
    with pytest.raises(expected), imap._errors("imap.example.com"):
        raise LoginError(answer.encode())


@pytest.mark.parametrize("code, expected", [(535, AuthFailed), (454, Transient), (534, AuthFailed)])
def test_smtp_login_refusals(code: int, expected: type[ConnectorError]) -> None:
    with pytest.raises(expected), smtp._errors("smtp.example.com"):
        raise smtplib.SMTPAuthenticationError(code, b"5.7.8 nope")
