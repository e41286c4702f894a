"""Names for contacts and leads, from display names, local parts and subjects."""

import pytest

from crmmail.mail.message import NamedAddress, parse_message
from crmmail.mail.names import MAX_LEAD_NAME, lead_name, person_names


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        # Display names as written, white space collapsed.
        ("Ann Lee", "ann@corp.test", ("Ann Lee", "Ann")),
        ("  Ann \t Lee  ", "ann@corp.test", ("Ann Lee", "Ann")),
        ("Jürgen Groß", "jg@x.test", ("Jürgen Groß", "Jürgen")),
        ("Madonna", "m@x.test", ("Madonna", "Madonna")),
        ("ann lee", "ann@corp.test", ("ann lee", "ann")),
        # "Last, First" turns round; more than one comma stays as it is.
        ("Smith, John", "js@x.test", ("John Smith", "John")),
        ("Smith,John", "js@x.test", ("John Smith", "John")),
        ("van der Berg, Anna Maria", "a@x.test", ("Anna Maria van der Berg", "Anna")),
        ("Smith, John, Jr.", "js@x.test", ("Smith, John, Jr.", "Smith,")),
        ("Smith,", "js@x.test", ("Smith,", "Smith,")),
        # Quotes around the name are not part of it; inner apostrophes are.
        ('"Ann Lee"', "ann@corp.test", ("Ann Lee", "Ann")),
        ("'Ann Lee'", "ann@corp.test", ("Ann Lee", "Ann")),
        ('"Smith, John"', "js@x.test", ("John Smith", "John")),
        ("Mary O'Neil", "m@x.test", ("Mary O'Neil", "Mary")),
        # No display name: from the local part.
        ("", "mary-ann.o_neil@x.test", ("Mary-Ann O Neil", "Mary-Ann")),
        ("", "john.smith@x.test", ("John Smith", "John")),
        ("", "JOHN_SMITH@x.test", ("John Smith", "John")),
        ("", "ann@corp.test", ("Ann", "Ann")),
        ("", "j.r.r.tolkien@x.test", ("J R R Tolkien", "J")),
        ("", "info123@x.test", ("Info123", "Info123")),
        ("   ", "ann@corp.test", ("Ann", "Ann")),
        ('""', "ann@corp.test", ("Ann", "Ann")),
        # A local part with nothing to make a name of: the address itself.
        ("", "...@x.test", ("...@x.test", "...@x.test")),
        ("", "_@x.test", ("_@x.test", "_@x.test")),
        # Display names that are addresses are not names.
        ("sales@x.test", "sales@x.test", ("Sales", "Sales")),
        ('"sales@x.test"', "sales@x.test", ("Sales", "Sales")),
        ("'bob.stone@corp.test'", "bob.stone@corp.test", ("Bob Stone", "Bob")),
        ("someone.else@y.test", "ann.lee@corp.test", ("Ann Lee", "Ann")),
        ("Ann via sales@x.test", "ann@corp.test", ("Ann", "Ann")),
    ],
)
def test_person_names(name: str, address: str, expected: tuple[str, str]) -> None:
    assert person_names(NamedAddress(name, address)) == expected


def test_person_names_are_bounded() -> None:
    name, first = person_names(NamedAddress("A" * 500, "a@x.test"))
    assert name == "A" * 200
    assert first == name
    name, first = person_names(NamedAddress("", "b" * 300 + "@x.test"))
    assert name == "B" + "b" * 199


def test_person_names_from_a_parsed_header() -> None:
    parsed = parse_message(
        b"From: =?utf-8?q?Gro=C3=9F=2C_J=C3=BCrgen?= <JG@X.test>\r\n"
        b"To: <mary-ann.o_neil@corp.test>\r\n\r\nbody\r\n"
    )
    assert [person_names(m) for m in parsed.from_ + parsed.to] == [
        ("Jürgen Groß", "Jürgen"),
        ("Mary-Ann O Neil", "Mary-Ann"),
    ]


ANN = NamedAddress("Ann Lee", "ann@corp.test")
SALES = NamedAddress("", "sales.team@corp.test")


@pytest.mark.parametrize(
    ("subject", "participants", "expected"),
    [
        ("Big order", [ANN], "Big order"),
        ("  Re:  Big \t order ", [ANN], "Big order"),
        ("", [ANN, SALES], "Lead from Ann Lee"),
        ("   ", [SALES, ANN], "Lead from Sales Team"),
        ("", [NamedAddress("Smith, John", "js@x.test")], "Lead from John Smith"),
        ("", [], "New lead"),
        (" \t ", [], "New lead"),
    ],
)
def test_lead_name(subject: str, participants: list[NamedAddress], expected: str) -> None:
    assert lead_name(subject, participants) == expected


def test_lead_name_is_bounded() -> None:
    assert lead_name("x" * 1_000, []) == "x" * MAX_LEAD_NAME
    from_long_name = lead_name("", [NamedAddress("A" * 500, "a@x.test")])
    assert from_long_name == "Lead from " + "A" * 200
    assert len(from_long_name) <= MAX_LEAD_NAME
