"""``serve --http-port``: /healthz, /readyz and Prometheus /metrics of a real process."""

import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.intake import message, send
from tests.test_serve import crmmail_argv

LISTENING = re.compile(r"SMTP on 127\.0\.0\.1:(\d+)")
HTTP = re.compile(r"HTTP on 127\.0\.0\.1:(\d+)")


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_readiness_and_metrics(database_url: str, acme: int, tmp_path: Path) -> None:
    argv = crmmail_argv(
        database_url, "serve", "--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-port", "0"
    )
    process = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        smtp = LISTENING.search(process.stdout.readline())
        http = HTTP.search(process.stdout.readline())
        assert smtp and http
        smtp_port, http_port = int(smtp.group(1)), int(http.group(1))

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

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
