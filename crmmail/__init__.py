"""crmmail: the email side of a CRM (smart addresses over SMTP, notes, contacts and leads)."""

__version__ = "0.1.0"
