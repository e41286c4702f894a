"""``crmmail account``: create, rename, list, show and set accounts (their smart addresses)."""

import click
from sqlalchemy.orm import Session

from crmmail.cli.core import Context, cli, emit, json_option, pass_context
from crmmail.errors import UserInputError
from crmmail.services import accounts
from crmmail.services.accounts import AccountView

DMARC_OUTCOMES = {"accept": "accepted", "tag": "tagged", "quarantine": "quarantined"}


@cli.group()
def account() -> None:
    """CRM accounts and their smart addresses."""


@account.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@json_option
@pass_context
def account_create(ctx: Context, slug: str, name: str | None, as_json: bool) -> None:
    """Create an account; its smart addresses are SLUG[+contact|+lead]@DOMAIN."""
    domains = ctx.settings.smart_domains
    data = ctx.run(
        lambda s: accounts.describe_account(accounts.create_account(s, slug, name), domains)
    )
    emit(data, as_json, lambda d: f"account {d.slug} created: {d.smart_addresses['note']}")


@account.command("rename")
@click.argument("slug")
@click.argument("new_slug")
@json_option
@pass_context
def account_rename(ctx: Context, slug: str, new_slug: str, as_json: bool) -> None:
    """Change an account's slug: its old addresses stop working at once (the old slug stays
    reserved to the account: no other account may take it, this one may take it back)."""
    domains = ctx.settings.smart_domains
    data = ctx.run(
        lambda s: accounts.describe_account(accounts.rename_account(s, slug, new_slug), domains)
    )
    emit(data, as_json, lambda d: f"account {slug} is now {d.slug}")


@account.command("list")
@json_option
@pass_context
def account_list(ctx: Context, as_json: bool) -> None:
    """List the accounts, by slug."""
    domains = ctx.settings.smart_domains
    rows = ctx.run(lambda s: accounts.list_account_views(s, domains))
    emit(
        rows,
        as_json,
        lambda data: "\n".join(f"{r.slug}  ({r.name})  {r.smart_addresses['note']}" for r in data),
    )


@account.command("show")
@click.argument("slug")
@json_option
@pass_context
def account_show(ctx: Context, slug: str, as_json: bool) -> None:
    """Show an account, its smart addresses and its DMARC policy."""
    domains = ctx.settings.smart_domains
    data = ctx.run(lambda s: accounts.show_account(s, slug, domains))
    emit(data, as_json, _account_text)


def _account_text(account: AccountView) -> str:
    return "\n".join(
        [f"{account.slug} ({account.name})"]
        + [f"  {action:8} {address}" for action, address in account.smart_addresses.items()]
        + [
            f"  DMARC    {account.dmarc_policy}: mail failing DMARC is "
            f"{DMARC_OUTCOMES[account.dmarc_policy]}"
        ]
    )


@account.command("set")
@click.argument("slug")
@click.option("--name", help="A new display name (the slug and the addresses stay).")
@click.option(
    "--dmarc-policy",
    type=click.Choice(list(DMARC_OUTCOMES)),
    help="What mail failing DMARC does: accept, tag (default; shown on its notes) or "
    "quarantine (acts on nothing, kept as ignored: dmarc_fail).",
)
@json_option
@pass_context
def account_set(
    ctx: Context, slug: str, name: str | None, dmarc_policy: str | None, as_json: bool
) -> None:
    """Change an account's display name or DMARC policy; prints the account as `show` does."""
    if name is None and dmarc_policy is None:
        raise UserInputError(
            "nothing to change: give --name TEXT and/or --dmarc-policy accept|tag|quarantine"
        )
    domains = ctx.settings.smart_domains

    def change(session: Session) -> AccountView:
        if name is not None:
            accounts.set_account_name(session, slug, name)
        if dmarc_policy is not None:
            accounts.set_dmarc_policy(session, slug, dmarc_policy)
        return accounts.show_account(session, slug, domains)

    data = ctx.run(change)
    changes = ([f"name {data.name!r}"] if name is not None else []) + (
        [f"mail failing DMARC is {DMARC_OUTCOMES[data.dmarc_policy]}"]
        if dmarc_policy is not None
        else []
    )
    emit(data, as_json, lambda d: f"account {d.slug}: {', '.join(changes)}")
