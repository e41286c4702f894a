"""Names of what mail creates (issue 11, item 9): reply prefixes and bidirectional controls.

A subject of only prefixes (``Re:``) names a lead as an empty one does; ``Fwd:``/``FW:`` and the
other prefixes threading removes are not part of a lead's name; the bidirectional controls
(U+202A-U+202E, U+2066-U+2069, the marks) that can make a name read as another are removed
from names and subjects, from mail and from the command line.
"""

import json

import pytest
from click.testing import CliRunner

from crmmail.cli import cli as crmmail_cli
from tests.intake import message
from tests.processor.conftest import Mailroom

CONTACT = "acme+contact@mail.localhost"
LEAD = "acme+lead@mail.localhost"
RLO, PDF, LRI, PDI, RLM = "\u202e", "\u202c", "\u2066", "\u2069", "\u200f"


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        ("Re:", "Lead from Bob Buyer"),
        ("RE: Fwd[2]:  ", "Lead from Bob Buyer"),
        ("Fwd: FW: Big order", "Big order"),
        ("AW: WG: Angebot für ACME", "Angebot für ACME"),
        (f"Order {RLO}0001{PDF} {LRI}urgent{PDI}{RLM}", "Order 0001 urgent"),
        ("Recap: spring", "Recap: spring"),
    ],
)
def test_lead_names_carry_no_prefixes_or_bidi_controls(
    mailroom: Mailroom, subject: str, name: str
) -> None:
    mailroom.deliver(message(to=LEAD, cc=None, subject=subject), [LEAD])
    assert [lead["name"] for lead in mailroom.leads()] == [name]


def test_contact_names_carry_no_bidi_controls(mailroom: Mailroom) -> None:
    mail = message(
        sender=f"Ann {RLO}eeL{PDF} <ann@corp.test>",
        to=f"{LRI}Carl{PDI} Coe{RLM} <carl@client.test>",
        cc=CONTACT,
    )
    mailroom.deliver(mail, [CONTACT])
    names = {c["emails"][0]: (c["name"], c["first_name"]) for c in mailroom.contacts()}
    assert names == {"ann@corp.test": ("Ann eeL", "Ann"), "carl@client.test": ("Carl Coe", "Carl")}


def test_a_lead_s_new_contacts_carry_no_bidi_controls(mailroom: Mailroom) -> None:
    mailroom.deliver(message(sender=f"{RLO}Dora{PDF} <dora@corp.test>", to=LEAD, cc=None), [LEAD])
    [contact] = mailroom.contacts()
    assert (contact["name"], contact["first_name"]) == ("Dora", "Dora")


def test_names_given_on_the_command_line_carry_no_bidi_controls(mailroom: Mailroom) -> None:
    result = CliRunner().invoke(
        crmmail_cli,
        [
            "--database-url",
            mailroom.settings.database_url,
            *("contact", "add", "acme", "eve@client.test", "--name", f"Eve {RLO}sraK{PDF}"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "Eve sraK"
