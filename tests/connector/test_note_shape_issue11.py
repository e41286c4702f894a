"""`note list --json` has one shape: a note the viewer may not read keeps every key, nulled."""

import json
from typing import Any

from click.testing import CliRunner

from crmmail.cli import cli as crmmail_cli
from crmmail.services import accounts
from tests.connector.conftest import PostOffice, mail

ADMIN = "me@acme.test"  # the acme fixture's admin
NO_ACCESS = "temp@acme.test"


def _notes(post: PostOffice, as_user: str) -> list[dict[str, Any]]:
    args = ["note", "list", "acme", "--as", as_user, "--json"]
    result = CliRunner().invoke(crmmail_cli, ["--database-url", post.settings.database_url, *args])
    assert result.exit_code == 0, result.output
    notes: list[dict[str, Any]] = json.loads(result.stdout)
    return notes


def test_an_unreadable_note_keeps_every_key_with_null_values(post: PostOffice) -> None:
    with post.db.transaction() as session:
        accounts.add_user(
            session,
            "acme",
            NO_ACCESS,
            name=None,
            admin=False,
            email_access=False,
            smart_domains=post.settings.smart_domains,
        )
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    box = post.connect(shared=True, user_email=ADMIN)
    post.deliver(mail("Quote"))
    assert post.sync(box["id"]).report.imported == 1

    [readable] = _notes(post, ADMIN)
    [unreadable] = _notes(post, NO_ACCESS)

    assert (readable["entity_type"], readable["entity_id"]) == ("contact", ann)
    assert (readable["subject"], readable["insufficient_rights"]) == ("Quote", False)
    assert list(unreadable) == list(readable)  # the same keys, in the same order
    content = ("subject", "from", "message_id", "inbound_id", "auth")
    assert {key: unreadable[key] for key in content} == dict.fromkeys(content)
    assert unreadable["insufficient_rights"] is True
    shown = {key: readable[key] for key in readable if key not in content}
    assert shown | {"insufficient_rights": True} == {
        key: unreadable[key] for key in unreadable if key not in content
    }
