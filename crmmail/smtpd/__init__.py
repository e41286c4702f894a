"""SMTP intake: decide at RCPT, spool durably at DATA, answer; never touch CRM data here."""
