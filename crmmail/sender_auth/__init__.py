"""Sender authentication of received mail: SPF, DKIM and DMARC, recorded as RFC 8601 results.

The worker calls :func:`crmmail.sender_auth.check.check_sender` (never the SMTP path). DNS
goes through :class:`crmmail.sender_auth.lookup.DnsLookup`, a dnspython resolver built from
``CRMMAIL_DNS_SERVERS`` with a short per-query timeout and a budget per message; a DNS failure
is a ``temperror`` result, never an exception that fails the message.
"""
