"""``crmmail serve``, ``process`` and ``sync``: run the server, drain the spool, sync due boxes."""

import asyncio
import logging
from pathlib import Path

import click

from crmmail.app import serve as serve_forever
from crmmail.cli.core import Context, cli, emit, json_option, pass_context, warn
from crmmail.cli.mailbox import sync_text
from crmmail.connector import facade as connector
from crmmail.processor.worker import Worker
from crmmail.storage.migrate import DatabaseReadOnly, check_writable


@cli.command()
@click.option("--smtp-host", help="Overrides CRMMAIL_SMTP_HOST.")
@click.option("--smtp-port", type=click.IntRange(0, 65535), help="Overrides CRMMAIL_SMTP_PORT.")
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    help="Serve /healthz, /readyz and /metrics here (overrides CRMMAIL_HTTP_PORT).",
)
@click.option(
    "--tls-cert-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate (chain) offered with STARTTLS (overrides CRMMAIL_TLS_CERT_FILE).",
)
@click.option(
    "--tls-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key of that certificate (overrides CRMMAIL_TLS_KEY_FILE).",
)
@pass_context
def serve(
    ctx: Context,
    smtp_host: str | None,
    smtp_port: int | None,
    http_port: int | None,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
) -> None:
    """Run the SMTP listener, the worker and the mailbox syncs until Ctrl-C or SIGTERM."""
    settings = ctx.settings.model_copy(
        update={
            key: value
            for key, value in (
                ("smtp_host", smtp_host),
                ("smtp_port", smtp_port),
                ("http_port", http_port),
                ("tls_cert_file", tls_cert_file),
                ("tls_key_file", tls_key_file),
            )
            if value is not None
        }
    )
    db = ctx.database()
    try:
        check_writable(db.engine)
    except DatabaseReadOnly as error:  # it may be writable again soon: serve, and say so
        warn(f"{error}; until then every message is answered 451 (try again later)")
    logging.getLogger("crmmail").setLevel(logging.INFO)  # a mail server logs every message
    asyncio.run(serve_forever(db, settings))


@cli.command()
@click.option(
    "--until-idle", is_flag=True, required=True, help="Drain the due messages, then exit."
)
@json_option
@pass_context
def process(ctx: Context, until_idle: bool, as_json: bool) -> None:
    """Process the spooled messages that are due, then exit."""
    count = Worker(ctx.database(), ctx.settings).run_until_idle()
    emit({"processed": count}, as_json, lambda d: f"processed {d['processed']} message(s)")


@cli.command("sync")
@click.option("--until-idle", is_flag=True, required=True, help="Run due syncs, then exit.")
@json_option
@pass_context
def sync_command(ctx: Context, until_idle: bool, as_json: bool) -> None:
    """Sync every mailbox that is due, once, then exit."""
    results = connector.sync_due(ctx.database(), ctx.settings)
    emit(
        [result.as_dict() for result in results],
        as_json,
        lambda d: "\n".join(sync_text(r) for r in results) or "no mailbox is due",
    )
