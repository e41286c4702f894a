"""Structured logs: with ``CRMMAIL_LOG_FORMAT=json`` every line is one JSON object."""

import json
import os
import subprocess
import sys
from pathlib import Path

from crmmail.config import Settings
from crmmail.storage.database import Database
from tests.intake import message, running_intake, send


def process_one_message(
    db: Database, settings: Settings, database_url: str, workdir: Path, log_format: str | None
) -> str:
    """Spool one message, run ``crmmail -v process --until-idle``; its stderr (the log)."""
    with running_intake(db, settings) as port:
        send(port, message(), ["acme@mail.localhost"])
    env = {**os.environ, "CRMMAIL_DATABASE_URL": database_url}
    env.pop("CRMMAIL_LOG_FORMAT", None)
    if log_format is not None:
        env["CRMMAIL_LOG_FORMAT"] = log_format
    result = subprocess.run(
        [sys.executable, "-m", "crmmail", "-v", "process", "--until-idle"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stderr


def test_json_logs_are_one_object_a_line_and_name_the_inbound_message(
    db: Database, settings: Settings, acme: int, database_url: str, tmp_path: Path
) -> None:
    log = process_one_message(db, settings, database_url, tmp_path, "json")
    records = [json.loads(line) for line in log.splitlines()]
    about_the_message = [record for record in records if "inbound_id" in record]
    assert about_the_message, log
    assert {record["logger"] for record in about_the_message} == {"crmmail.processor.worker"}
    [outcome] = about_the_message
    assert outcome["level"] == "INFO"
    assert outcome["message"] == f"inbound {outcome['inbound_id']}: ignored (no_match)"
    assert outcome["time"].endswith("Z")


def test_text_logs_stay_the_default(
    db: Database, settings: Settings, acme: int, database_url: str, tmp_path: Path
) -> None:
    log = process_one_message(db, settings, database_url, tmp_path, None)
    assert " INFO crmmail.processor.worker: inbound " in log
