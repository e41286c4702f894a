"""``crmmail template``: add, list, edit, delete and render mail templates."""

from pathlib import Path

import click

from crmmail.cli.core import (
    Context,
    cli,
    emit,
    json_option,
    listing_command,
    pass_context,
    read_body,
)
from crmmail.errors import UserInputError
from crmmail.services import templates


@cli.group("template")
def template_group() -> None:
    """Mail templates with {{contact.name}}-style fields."""


@template_group.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--subject", required=True)
@click.option("--body")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", "is_html", is_flag=True, help="The body is HTML.")
@json_option
@pass_context
def template_add(
    ctx: Context,
    slug: str,
    name: str,
    subject: str,
    body: str | None,
    body_file: Path | None,
    is_html: bool,
    as_json: bool,
) -> None:
    """Save a template (its fields are checked now, not when sending)."""
    text = read_body(body, body_file)
    data = ctx.run(lambda s: templates.add_template(s, slug, name, subject, text, is_html))
    emit(data, as_json, lambda d: f"template {d.name!r} saved")


listing_command(
    template_group,
    "List an account's templates.",
    templates.list_templates,
    lambda r: f"{r.id:>6}  {r.name}  ({'html' if r.html else 'text'})  {r.subject}",
)


@template_group.command("edit")
@click.argument("slug")
@click.argument("name")
@click.option("--name", "new_name", help="A new name.")
@click.option("--subject")
@click.option("--body")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html/--text", "is_html", default=None, help="The body is HTML, or plain text.")
@json_option
@pass_context
def template_edit(
    ctx: Context,
    slug: str,
    name: str,
    new_name: str | None,
    subject: str | None,
    body: str | None,
    body_file: Path | None,
    is_html: bool | None,
    as_json: bool,
) -> None:
    """Change a template's name, subject, body or kind (checked as `add` checks them)."""
    if (new_name, subject, body, body_file, is_html) == (None,) * 5:
        raise UserInputError(
            "nothing to change: give --name, --subject, --body or --body-file, --html or --text"
        )
    text = None if body is None and body_file is None else read_body(body, body_file)
    data = ctx.run(
        lambda s: templates.edit_template(
            s, slug, name, new_name=new_name, subject=subject, body=text, is_html=is_html
        )
    )
    emit(data, as_json, lambda d: f"template {d.name!r} saved")


@template_group.command("delete")
@click.argument("slug")
@click.argument("name")
@json_option
@pass_context
def template_delete(ctx: Context, slug: str, name: str, as_json: bool) -> None:
    """Delete a template (mail already sent with it stays as it was)."""
    data = ctx.run(lambda s: templates.delete_template(s, slug, name))
    emit(data, as_json, lambda d: f"template {d.name!r} deleted")


@template_group.command("render")
@click.argument("slug")
@click.argument("name")
@click.option("--contact", "contact_id", type=int, required=True)
@click.option("--lead", "lead_id", type=int)
@click.option("--as", "as_user", metavar="USER_EMAIL", help="Fills {{user.*}}.")
@json_option
@pass_context
def template_render(
    ctx: Context,
    slug: str,
    name: str,
    contact_id: int,
    lead_id: int | None,
    as_user: str | None,
    as_json: bool,
) -> None:
    """Show a template filled in for a contact (and lead)."""
    data = ctx.run(lambda s: templates.render(s, slug, name, contact_id, lead_id, as_user))
    emit(data, as_json, lambda d: f"Subject: {d.subject}\n\n{d.text}")
