"""Recognising machine-made mail (bounces, feedback, auto-replies, bulk) from its signals."""

from email.message import EmailMessage

import pytest

from crmmail.mail.message import ParsedMessage, parse_message
from crmmail.processor.steps.classify import machine_made

PERSON = "bob@corp.test"


def machine_readable_part() -> EmailMessage:
    """A ``message/delivery-status`` part: per-message fields, then per-recipient fields."""
    per_message = EmailMessage()
    per_message["Reporting-MTA"] = "dns; mx.corp.test"
    per_recipient = EmailMessage()
    per_recipient["Final-Recipient"] = "rfc822; gone@corp.test"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    part = EmailMessage()
    part["Content-Type"] = "message/delivery-status"
    part.set_payload([per_message, per_recipient])
    return part


def mail(
    headers: dict[str, str] | None = None,
    *,
    from_: str = "Bob Stone <bob@corp.test>",
    subject: str = "Quote for 40 chairs",
    report_type: str | None = None,
) -> ParsedMessage:
    """A message as a person would send it, with ``headers`` added, parsed from its bytes."""
    message = EmailMessage()
    message["From"] = from_
    message["To"] = "acme@mail.localhost"
    message["Subject"] = subject
    message["Message-ID"] = "<m1@corp.test>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content("Hello,\nplease send the quote.\n")
    if report_type is not None:
        message.make_mixed()
        message.attach(machine_readable_part())
        message.set_type("multipart/report")
        message.set_param("report-type", report_type)
    return parse_message(message.as_bytes())


def test_a_person_s_mail_is_not_machine_made() -> None:
    parsed = mail()
    assert parsed.content_type == "text/plain"
    assert machine_made(parsed, PERSON) is None


@pytest.mark.parametrize(
    ("mail_from", "from_", "expected"),
    [
        # The null reverse-path, however the envelope spelt it.
        ("<>", "Bob Stone <bob@corp.test>", "bounce"),
        ("", "Bob Stone <bob@corp.test>", "bounce"),
        # A mailer-daemon or postmaster From, in any case.
        (PERSON, "Mail Delivery System <MAILER-DAEMON@mx.corp.test>", "bounce"),
        (PERSON, "mailer-daemon@corp.test", "bounce"),
        (PERSON, "Postmaster <postmaster@corp.test>", "bounce"),
        ("postmaster@corp.test", "POSTMASTER@corp.test", "bounce"),
        # Look-alikes are people.
        (PERSON, "postmaster-team@corp.test", None),
        (PERSON, "Mailer Daemon Fan <fan@corp.test>", None),
        (PERSON, "bob@mailer-daemon.test", None),
        ("bounce-123@lists.test", "Bob Stone <bob@corp.test>", None),
    ],
)
def test_bounce_senders(mail_from: str, from_: str, expected: str | None) -> None:
    assert machine_made(mail(from_=from_), mail_from) == expected


@pytest.mark.parametrize(
    ("report_type", "expected"),
    [
        ("delivery-status", "bounce"),
        ("feedback-report", "feedback"),
        ("disposition-notification", "auto_reply"),
        ("something-new", "bounce"),
    ],
)
def test_multipart_report(report_type: str, expected: str) -> None:
    parsed = mail(report_type=report_type)
    assert parsed.content_type == "multipart/report"
    assert machine_made(parsed, PERSON) == expected


def test_a_feedback_report_from_the_null_sender_is_a_bounce() -> None:
    assert machine_made(mail(report_type="feedback-report"), "<>") == "bounce"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # RFC 3834 Auto-Submitted: anything but "no".
        ({"Auto-Submitted": "auto-replied"}, "auto_reply"),
        ({"Auto-Submitted": "auto-generated"}, "auto_reply"),
        ({"Auto-Submitted": "Auto-Replied; owner-email=x@corp.test"}, "auto_reply"),
        ({"Auto-Submitted": "no"}, None),
        ({"Auto-Submitted": "No"}, None),
        ({"Auto-Submitted": " NO "}, None),
        # Vendor auto-reply headers, whatever their value.
        ({"X-Autoreply": "yes"}, "auto_reply"),
        ({"X-Autorespond": "Out of office"}, "auto_reply"),
        ({"X-AutoResponder": "1"}, "auto_reply"),
        # Precedence.
        ({"Precedence": "bulk"}, "bulk"),
        ({"Precedence": "Bulk"}, "bulk"),
        ({"Precedence": "junk"}, "bulk"),
        ({"Precedence": "list"}, "bulk"),
        ({"Precedence": "auto_reply"}, "auto_reply"),
        ({"Precedence": "first-class"}, None),
        # Auto-Submitted: no does not hide a bulk Precedence.
        ({"Auto-Submitted": "no", "Precedence": "bulk"}, "bulk"),
        # Mailing lists (RFC 2919, RFC 2369).
        ({"List-Id": "<sales.corp.test>"}, "list"),
        ({"List-Unsubscribe": "<https://corp.test/leave>"}, "list"),
        ({"List-Post": "<mailto:sales@corp.test>"}, "list"),
        ({"List-Archive": "<https://corp.test/archive>"}, "list"),
        # Headers that mean nothing here.
        ({"X-Mailer": "Autoreply 2.0"}, None),
    ],
)
def test_headers(headers: dict[str, str], expected: str | None) -> None:
    assert machine_made(mail(headers), PERSON) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Automatic reply: Quote for 40 chairs", "auto_reply"),
        ("AUTOMATIC REPLY: x", "auto_reply"),
        ("Auto: new models in stock", None),  # a car dealer writes like this
        ("Autoreply: x", "auto_reply"),
        ("Auto-Reply: x", "auto_reply"),
        ("Out of Office: back Monday", "auto_reply"),
        ("Out of Office AutoReply: x", "auto_reply"),
        ("Abwesenheitsnotiz: x", "auto_reply"),
        ("Réponse automatique : x", "auto_reply"),
        ("Respuesta automática: x", "auto_reply"),
        ("Re: Automatic reply: x", None),
        ("Fwd: Out of Office: x", None),
        ("Automatically generated quotes", None),
        ("Out of office tomorrow, call me today", None),
    ],
)
def test_auto_reply_subjects(subject: str, expected: str | None) -> None:
    assert machine_made(mail(subject=subject), PERSON) == expected


def test_a_message_without_from_is_judged_on_its_other_signals() -> None:
    parsed = parse_message(b"Subject: hello\r\n\r\nbody\r\n")
    assert parsed.from_ == []
    assert machine_made(parsed, PERSON) is None
    assert machine_made(parsed, "<>") == "bounce"
