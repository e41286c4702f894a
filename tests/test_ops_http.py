"""``serve --http-port``: /healthz, /readyz and Prometheus /metrics of a real process.

The metrics are read from the real endpoint after real SMTP traffic; the worker's outcomes that
need a storage fault (retry, dead) are checked on a worker and registry run in the test.
"""

import re
import signal
import smtplib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crmmail.config import Settings
from crmmail.ops.metrics import Metrics
from crmmail.processor.worker import Worker
from crmmail.services import crm, inbound
from crmmail.smtpd.refusals import RefusalReason
from crmmail.storage.database import Database
from tests.faults import fail_inserts
from tests.intake import message, running_intake, send, wire_bytes
from tests.test_serve import crmmail_argv

LISTENING = re.compile(r"SMTP on 127\.0\.0\.1:(\d+)")
HTTP = re.compile(r"HTTP on 127\.0\.0\.1:(\d+)")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(exposition: str) -> Samples:
    """Every sample of a /metrics page by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@dataclass
class Serving:
    """A ``crmmail serve --http-port`` process and its two ports."""

    process: "subprocess.Popen[str]"
    smtp_port: int
    http_port: int

    def stop(self) -> None:
        """SIGTERM; the process must exit 0."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0


@contextmanager
def serving(database_url: str, workdir: Path) -> Iterator[Serving]:
    """``crmmail serve`` with SMTP and HTTP on free ports; killed if the test did not stop it."""
    argv = crmmail_argv(
        database_url, "serve", "--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-port", "0"
    )
    process = subprocess.Popen(
        argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        smtp = LISTENING.search(process.stdout.readline())
        http = HTTP.search(process.stdout.readline())
        assert smtp and http
        yield Serving(process, int(smtp.group(1)), int(http.group(1)))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_health_readiness_and_metrics(database_url: str, acme: int, tmp_path: Path) -> None:
    with serving(database_url, tmp_path) as serve:
        smtp_port, http_port = serve.smtp_port, serve.http_port

        assert _get(http_port, "/healthz") == (200, "ok\n")
        assert _get(http_port, "/readyz") == (200, "ready\n")
        assert _get(http_port, "/nope")[0] == 404
        send(smtp_port, message(), ["acme@mail.localhost"])
        status, metrics = _get(http_port, "/metrics")
        assert status == 200
        assert "crmmail_messages_accepted_total 1.0" in metrics
        assert re.search(
            r'crmmail_inbound_messages\{status="(queued|processing|ignored|done)"\} 1', metrics
        )
        assert 'crmmail_mailboxes{status="active"} 0.0' in metrics

        serve.stop()


def _wait_for_metrics(http_port: int, done: Callable[[Samples], bool]) -> Samples:
    deadline = time.monotonic() + 30
    while True:
        status, page = _get(http_port, "/metrics")
        assert status == 200
        samples = _samples(page)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_metrics_count_refusals_outcomes_and_processing_time(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    with serving(database_url, tmp_path) as serve:
        smtp_port, http_port = serve.smtp_port, serve.http_port

        before = _samples(_get(http_port, "/metrics")[1])
        refused = "crmmail_messages_refused_total"
        for reason in ("unknown_address", "relay_denied", "too_many_connections", "data_timeout"):
            assert before[(refused, (("reason", reason),))] == 0.0  # every reason shows at 0
        assert before[("crmmail_processing_seconds_count", ())] == 0.0

        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(smtp_port, message(), ["nobody@mail.localhost"])
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(smtp_port, message(), ["someone@elsewhere.test"])
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(smtp_port, message(), ["ghost@mail.localhost"])
        send(smtp_port, message(), ["acme@mail.localhost"])
        send(smtp_port, message(message_id="<quote-2@corp.test>"), ["acme@mail.localhost"])

        processed = "crmmail_messages_processed_total"
        samples = _wait_for_metrics(
            http_port, lambda s: s[("crmmail_processing_seconds_count", ())] >= 2
        )
        assert samples[(refused, (("reason", "unknown_address"),))] == 2.0
        assert samples[(refused, (("reason", "relay_denied"),))] == 1.0
        assert samples[("crmmail_messages_accepted_total", ())] == 2.0
        assert samples[("crmmail_processing_seconds_count", ())] == 2.0
        assert samples[("crmmail_processing_seconds_sum", ())] > 0
        with db.read() as session:
            statuses = [row["status"] for row in inbound.list_inbound(session, "acme")]
        assert len(statuses) == 2
        for status in ("done", "ignored", "queued", "dead"):
            assert samples[(processed, (("status", status),))] == statuses.count(status)
        assert samples[("crmmail_inbound_messages", (("status", "queued"),))] == 0.0

        serve.stop()


def test_worker_outcomes_reach_the_metrics(db: Database, settings: Settings, acme: int) -> None:
    """Every outcome is counted: done, back to the queue after a failure, and dead."""
    metrics = Metrics(db)
    worker = Worker(
        db,
        settings.model_copy(update={"max_attempts": 2}),
        on_processed=metrics.message_processed,
    )
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", settings.smart_domains)
    fail_inserts(db, "note", "new.subject = 'poison'")
    with running_intake(db, settings) as port:
        send(port, message(subject="poison", message_id="<p@x>"), ["acme@mail.localhost"])
        send(port, message(subject="fine", message_id="<f@x>"), ["acme@mail.localhost"])
    assert worker.run_until_idle() == 3  # poison, fine, poison again
    samples = _samples(metrics.exposition().decode())
    processed = "crmmail_messages_processed_total"
    assert samples[(processed, (("status", "done"),))] == 1.0
    assert samples[(processed, (("status", "queued"),))] == 1.0
    assert samples[(processed, (("status", "dead"),))] == 1.0
    assert samples[(processed, (("status", "ignored"),))] == 0.0
    assert samples[("crmmail_processing_seconds_count", ())] == 3.0
    assert samples[("crmmail_delivery_seconds_count", ())] == 2.0  # done and dead, not the retry
    assert 0.0 < samples[("crmmail_delivery_seconds_sum", ())] < 600.0
    assert samples[("crmmail_inbound_messages", (("status", "dead"),))] == 1.0


def test_size_refusals_made_by_aiosmtpd_are_reported(
    db: Database, settings: Settings, acme: int
) -> None:
    refusals: list[RefusalReason] = []
    small = settings.model_copy(update={"max_message_size": 1000})
    big = message(body="x" * 2000 + "\n")
    with running_intake(db, small, refusals.append) as port:
        with pytest.raises(smtplib.SMTPSenderRefused):  # MAIL FROM ... SIZE=2200: 552
            send(port, big, ["acme@mail.localhost"])
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:  # no SIZE: 552 after DATA
            client.helo("client.test")
            client.mail("bob@corp.test")
            client.rcpt("acme@mail.localhost")
            code, _ = client.data(wire_bytes(big))
            assert code == 552
    assert refusals == [RefusalReason.SIZE, RefusalReason.SIZE]
