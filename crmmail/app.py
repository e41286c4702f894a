"""Wiring for ``crmmail serve``: SMTP listener, worker and mailbox sync scheduler, stopped cleanly.

SIGINT/SIGTERM stop accepting connections, let sessions in DATA finish (``421`` to idle ones),
let the worker finish the message in hand and the scheduler the batch in hand, and exit. An
hourly purge empties the Deleted folder of emails deleted more than 30 days ago.
Messages answered ``250`` are in the spool.
"""

import asyncio
import errno
import logging
import os
import signal
import socket
import threading

from crmmail.config import Settings
from crmmail.connector.credentials import SecretKeyMissing
from crmmail.connector.scheduler import SyncScheduler
from crmmail.errors import CrmmailError
from crmmail.ops.http import OpsServer
from crmmail.ops.metrics import Metrics
from crmmail.processor.worker import Worker
from crmmail.services.deleted import purge_deleted
from crmmail.smtpd.group_commit import SpoolCommitter
from crmmail.smtpd.handler import IntakeHandler
from crmmail.smtpd.server import start_smtp_server
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.write_priority import SpoolFirstDatabase, WritePriority

log = logging.getLogger(__name__)

PURGE_INTERVAL = 3600.0  # seconds
# The settings (and flags) that choose where serve listens, named in its errors.
SMTP_KNOBS = ("CRMMAIL_SMTP_HOST (--smtp-host)", "CRMMAIL_SMTP_PORT (--smtp-port)")
HTTP_KNOBS = ("CRMMAIL_HTTP_HOST", "CRMMAIL_HTTP_PORT (--http-port)")


async def serve(db: Database, settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    metrics = Metrics(db)
    # SQLite has one writer at a time: the intake's spool commits go first (see write_priority).
    priority = None if db.is_postgresql else WritePriority()
    background_db = db if priority is None else SpoolFirstDatabase(db, priority)
    worker = Worker(background_db, settings, on_processed=metrics.message_processed)

    def spooled() -> None:
        metrics.accepted.inc()
        worker.wakeup.set()

    handler = IntakeHandler(
        db,
        settings,
        on_spooled=spooled,
        on_refused=metrics.message_refused,
        committer=SpoolCommitter(db, priority=priority),
    )
    try:
        listener = await start_smtp_server(
            handler, settings, settings.smtp_host, settings.smtp_port
        )
    except OSError as error:
        raise cannot_listen(error, settings.smtp_host, settings.smtp_port, SMTP_KNOBS) from None
    stop = threading.Event()
    ready = threading.Event()
    ops = _ops_server(settings, metrics, ready)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    threads = [
        threading.Thread(target=worker.run, args=(stop,), name="crmmail-worker"),
        threading.Thread(
            target=purge_deleted_hourly, args=(background_db, stop), name="crmmail-purge"
        ),
    ]
    scheduler = _mailbox_scheduler(background_db, settings)
    if scheduler is not None:
        threads.append(threading.Thread(target=scheduler.run, args=(stop,), name="crmmail-sync"))
    for thread in threads:
        thread.start()
    try:
        host, port = listener.address
        log.info("crmmail listening for SMTP on %s:%s", host, port)
        print(
            f"crmmail: SMTP on {host}:{port}, smart domains: "
            f"{', '.join(settings.smart_domains)} (Ctrl-C stops)",
            flush=True,
        )
        if ops is not None:
            ops.start()
            http_host, http_port = ops.address
            print(
                f"crmmail: HTTP on {http_host}:{http_port} (/healthz /readyz /metrics)", flush=True
            )
        ready.set()
        await stopping.wait()
    finally:
        ready.clear()  # not ready first: load balancers stop sending new connections
        log.info("stopping: no new connections; finishing DATA in progress and the message in hand")
        await listener.shut_down(settings.shutdown_grace)
        stop.set()
        worker.wakeup.set()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        if ops is not None:
            ops.stop()
    print("crmmail: stopped", flush=True)


def _ops_server(settings: Settings, metrics: Metrics, ready: threading.Event) -> OpsServer | None:
    """The health and metrics endpoint, when ``CRMMAIL_HTTP_PORT`` (``--http-port``) is set."""
    if settings.http_port is None:
        return None
    try:
        return OpsServer(settings.http_host, settings.http_port, metrics, ready.is_set)
    except OSError as error:
        raise cannot_listen(error, settings.http_host, settings.http_port, HTTP_KNOBS) from None


def cannot_listen(error: OSError, host: str, port: int, knobs: tuple[str, str]) -> CrmmailError:
    """One line saying why ``host:port`` cannot be listened on, and which setting to change.

    >>> print(cannot_listen(socket.gaierror(-2, "Name or service not known"), "999.1.1.1", 25,
    ...                     SMTP_KNOBS))
    cannot listen on 999.1.1.1:25: not an address of this machine, nor a name it resolves: \
set CRMMAIL_SMTP_HOST (--smtp-host) to one of its addresses
    """
    host_knob, port_knob = knobs
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(error, socket.gaierror):
        why = f"not an address of this machine, nor a name it resolves: set {host_knob}"
        return CrmmailError(f"cannot listen on {where}: {why} to one of its addresses")
    reason = os.strerror(error.errno) if error.errno else str(error)
    advice = {
        errno.EADDRINUSE: f"another process listens there: stop it or set {port_knob}",
        errno.EADDRNOTAVAIL: f"set {host_knob} to an address of this machine",
        errno.EACCES: f"ports below 1024 need root or CAP_NET_BIND_SERVICE, or set {port_knob}",
    }.get(error.errno or 0, f"check {host_knob} and {port_knob}")
    return CrmmailError(f"cannot listen on {where}: {reason}: {advice}")


def purge_deleted_hourly(db: Database, stop: threading.Event) -> None:
    """Empty the Deleted folder of what is older than 30 days, now and then every hour."""
    while True:
        try:
            with db.transaction() as session:
                purged = purge_deleted(session, utcnow())
            if purged:
                log.info("purged %d email(s) deleted more than 30 days ago", purged)
        except Exception:  # the database is away: the next round tries again
            log.exception("the purge of the Deleted folder failed")
        if stop.wait(PURGE_INTERVAL):
            return


def _mailbox_scheduler(db: Database, settings: Settings) -> SyncScheduler | None:
    """The sync scheduler, or ``None`` (with a warning) when no key opens mailbox passwords."""
    try:
        return SyncScheduler.from_settings(db, settings)
    except SecretKeyMissing as error:
        log.warning("mailbox sync is off: %s", error)
        return None
