"""The mailbox connector: discovery, IMAP sync, SMTP send and the sync scheduler."""
