"""The SMTP replies crmmail gives, as named constants (tests compare against these)."""

RCPT_OK = "250 2.1.5 Recipient OK"
QUEUED = "250 2.0.0 Message accepted for delivery"
UNKNOWN_ADDRESS = "550 5.1.1 No such smart address here"
RELAY_DENIED = "550 5.7.1 Relaying denied: we only accept mail for our own addresses"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
