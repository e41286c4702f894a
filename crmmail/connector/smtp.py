"""SMTP submission through the box's own server (stdlib ``smtplib``), TLS always verified."""

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from crmmail.connector.endpoints import Endpoint, Security
from crmmail.connector.errors import (
    AuthFailed,
    ConnectorError,
    Permanent,
    Transient,
    transport_error,
)


@contextmanager
def smtp_session(
    endpoint: Endpoint, username: str, password: str, context: ssl.SSLContext, timeout: float
) -> Iterator[smtplib.SMTP]:
    """Connect, secure (implicit TLS or STARTTLS), authenticate; QUIT on the way out."""
    with _errors(endpoint.host):
        if endpoint.security is Security.SSL:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=timeout, context=context
            )
        else:
            client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=timeout)
    try:
        with _errors(endpoint.host):
            client.ehlo()
            if endpoint.security is Security.STARTTLS:
                client.starttls(context=context)
                client.ehlo()
            client.login(username, password)
        yield client
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def verify_login(
    endpoint: Endpoint, username: str, password: str, context: ssl.SSLContext, timeout: float
) -> None:
    """Log in and out, to prove the settings work before they are saved."""
    with smtp_session(endpoint, username, password, context, timeout):
        pass


def submit(
    endpoint: Endpoint,
    username: str,
    password: str,
    context: ssl.SSLContext,
    timeout: float,
    envelope: tuple[str, list[str]],
    raw: bytes,
) -> None:
    """Hand ``raw`` to the box's server for the envelope's recipients; any refusal fails it."""
    sender, recipients = envelope
    with smtp_session(endpoint, username, password, context, timeout) as client:
        with _errors(endpoint.host):
            refused = client.sendmail(sender, recipients, raw)
        if refused:
            addresses = ", ".join(sorted(refused))
            raise Permanent(f"{endpoint.host} refused the recipients {addresses}")


@contextmanager
def _errors(host: str) -> Iterator[None]:
    """Translate smtplib, ssl and socket failures into the connector's error tree."""
    try:
        yield
    except ConnectorError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        if 400 <= exc.smtp_code < 500:  # 454: temporary authentication failure (RFC 4954)
            raise Transient(f"{host} refused the login for now: {_reply(exc)}") from exc
        raise AuthFailed(f"authentication failed at {host}: {_reply(exc)}") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise Permanent(f"{host} does not offer what we need: {exc}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise Permanent(f"{host} refused every recipient") from exc
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise Transient(f"{host} answered {exc.smtp_code}: {_reply(exc)}") from exc
        raise Permanent(f"{host} answered {exc.smtp_code}: {_reply(exc)}") from exc
    except OSError as exc:  # smtplib.SMTPException is an OSError too
        raise transport_error(host, exc) from exc


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:300]
