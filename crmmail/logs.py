"""Log output: readable lines for a terminal, or one JSON object per line for production.

``CRMMAIL_LOG_FORMAT=json`` makes every record one JSON object with ``time`` (UTC, ISO 8601),
``level``, ``logger`` and ``message``, plus ``exception`` when there is one and any of the
context fields below that the call passed with ``extra=`` (``inbound_id`` on every line about a
spooled message, ``mailbox_id`` on every line about a connected box, ``peer`` for SMTP).
A log line is never more than one line: newlines in messages are escaped by JSON.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

CONTEXT_FIELDS = ("inbound_id", "mailbox_id", "account_id", "peer")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record.

    >>> record = logging.makeLogRecord(
    ...     {"name": "crmmail.worker", "levelname": "INFO", "msg": "inbound %d: %s",
    ...      "args": (7, "done"), "created": 0.0, "inbound_id": 7})
    >>> JsonFormatter().format(record)
    '{"time": "1970-01-01T00:00:00.000Z", "level": "INFO", "logger": "crmmail.worker", \
"message": "inbound 7: done", "inbound_id": 7}'
    """

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: LogFormat, level: int) -> None:
    """Send records to stderr in ``log_format``; aiosmtpd's per-command chatter stays quiet."""
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    # Like logging.basicConfig: a host that already set up logging (a test runner) keeps its own.
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("mail.log").setLevel(logging.WARNING)
