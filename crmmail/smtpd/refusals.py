"""Why the intake refused a message or cut a session: the ``reason`` label of the refusal metric.

The handler and the listener report each refusal through a callable the caller passes in
(``serve`` counts them in ``crmmail_messages_refused_total``); nothing here keeps state.
"""

from collections.abc import Callable
from enum import StrEnum


class RefusalReason(StrEnum):
    """One reason per kind of refusal; the values are the metric's label values."""

    UNKNOWN_ADDRESS = "unknown_address"  # 550 5.1.1 at RCPT
    RELAY_DENIED = "relay_denied"  # 550 5.7.1 at RCPT
    TOO_MANY_RECIPIENTS = "too_many_recipients"  # 452 4.5.3 at RCPT
    TOO_MANY_CONNECTIONS = "too_many_connections"  # 421 4.7.0 instead of the greeting
    SIZE = "size"  # 552 at MAIL (SIZE=) or at the end of DATA
    TEMPORARY_FAILURE = "temporary_failure"  # 451 4.3.0: storage did not answer
    COMMAND_TIMEOUT = "command_timeout"  # 421 4.4.2: the client went quiet
    DATA_TIMEOUT = "data_timeout"  # 421 4.4.2: the whole DATA phase took too long
    TLS_HANDSHAKE = "tls_handshake"  # STARTTLS began but the handshake failed
    PROXY_HEADER = "proxy_header"  # a load balancer's connection without a valid PROXY header


RefusalObserver = Callable[[RefusalReason], None]
