"""``crmmail thread list``: the threads of the mailboxes' emails a user may read."""

import click

from crmmail.cli.core import Context, as_option, cli, emit, json_option, pass_context
from crmmail.services import mail_views


@cli.group("thread")
def thread_group() -> None:
    """Threads of the mailboxes' emails."""


@thread_group.command("list")
@click.argument("slug")
@as_option
@click.option("--mailbox", "mailbox_id", type=int)
@json_option
@pass_context
def thread_list(
    ctx: Context, slug: str, as_user: str, mailbox_id: int | None, as_json: bool
) -> None:
    """List the threads the user may read, the most recent first."""
    rows = ctx.run(lambda s: mail_views.list_threads(s, slug, as_user, mailbox_id))
    emit(
        rows,
        as_json,
        lambda data: "\n".join(
            f"{r.id:>6}  {len(r.message_ids):>3} msg  {r.counterpart}  {r.subject}" for r in data
        ),
    )
