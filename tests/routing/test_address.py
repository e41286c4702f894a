"""The smart-address grammar and resolving a recipient to a Route or a Refusal, case by case."""

import pytest

from crmmail.routing.address import (
    Action,
    SmartAddress,
    format_address,
    is_our_domain,
    is_valid_slug,
    parse,
    split_address,
)
from crmmail.routing.resolve import Refusal, Route, resolve

OURS = ("mail.localhost",)
BOTH = ("mail.localhost", "crm.example.test")
SLUG_63 = "a" * 63
SLUG_64 = "a" * 64


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # The plain slug is a note; each known action after "+".
        ("acme@mail.localhost", SmartAddress("acme", Action.NOTE, "mail.localhost")),
        ("acme+contact@mail.localhost", SmartAddress("acme", Action.CONTACT, "mail.localhost")),
        ("acme+lead@mail.localhost", SmartAddress("acme", Action.LEAD, "mail.localhost")),
        # Case-insensitive in slug, action and domain; the result is lower case.
        ("Acme@Mail.Localhost", SmartAddress("acme", Action.NOTE, "mail.localhost")),
        ("ACME+LEAD@MAIL.LOCALHOST", SmartAddress("acme", Action.LEAD, "mail.localhost")),
        ("acme+Contact@mail.localhost", SmartAddress("acme", Action.CONTACT, "mail.localhost")),
        # Digits and inner hyphens; one-character slugs.
        ("acme-2@mail.localhost", SmartAddress("acme-2", Action.NOTE, "mail.localhost")),
        ("a-b-c@mail.localhost", SmartAddress("a-b-c", Action.NOTE, "mail.localhost")),
        ("a--b@mail.localhost", SmartAddress("a--b", Action.NOTE, "mail.localhost")),
        ("7@mail.localhost", SmartAddress("7", Action.NOTE, "mail.localhost")),
        ("x+lead@mail.localhost", SmartAddress("x", Action.LEAD, "mail.localhost")),
        # The longest slug: 63 characters.
        (f"{SLUG_63}@mail.localhost", SmartAddress(SLUG_63, Action.NOTE, "mail.localhost")),
        (f"{SLUG_63}+lead@mail.localhost", SmartAddress(SLUG_63, Action.LEAD, "mail.localhost")),
        # A fully qualified domain with its root dot is the same domain.
        ("acme@mail.localhost.", SmartAddress("acme", Action.NOTE, "mail.localhost")),
    ],
)
def test_parse_accepts_the_strict_form(address: str, expected: SmartAddress) -> None:
    assert parse(address, OURS) == expected


@pytest.mark.parametrize(
    "address",
    [
        # Actions: unknown, empty, "+note" spelt out, two of them, other separators.
        "acme+nope@mail.localhost",
        "acme+@mail.localhost",
        "acme+note@mail.localhost",
        "acme+NOTE@mail.localhost",
        "acme+lead+lead@mail.localhost",
        "acme+lead2@mail.localhost",
        "acme.lead@mail.localhost",
        "+lead@mail.localhost",
        # Quoted local parts, even when the quoted text is a valid slug.
        '"acme"@mail.localhost',
        '"acme+lead"@mail.localhost',
        '"acme@mail.localhost"@mail.localhost',
        '"a b"@mail.localhost',
        # Relay forms: percent hack, bang path, source route, a second "@".
        "acme%other.test@mail.localhost",
        "other.test!acme@mail.localhost",
        "@relay.test:acme@mail.localhost",
        "other@x.test@mail.localhost",
        "acme@mail.localhost@other.test",
        # IP literals and other domains.
        "acme@[127.0.0.1]",
        "acme@[IPv6:::1]",
        "user@[127.0.0.1]",
        "acme@127.0.0.1",
        "acme@other.test",
        "acme@localhost",
        "acme@mail.localhost.evil.test",
        "acme@evilmail.localhost",
        # Sub-domains of ours are not ours.
        "acme@x.mail.localhost",
        "acme@sub.mail.localhost",
        # Empty local part, empty domain, no "@", nothing at all.
        "@mail.localhost",
        "acme@",
        "acme",
        "",
        # NUL, control characters and white space anywhere.
        "ac\x00me@mail.localhost",
        "acme\x00@mail.localhost",
        "acme@mail.localhost\x00",
        "acme\n@mail.localhost",
        "acme@mail.localhost\n",
        "acme\r\n@mail.localhost",
        "ac\tme@mail.localhost",
        "ac\x7fme@mail.localhost",
        " acme@mail.localhost",
        "acme @mail.localhost",
        "acme@ mail.localhost",
        "acme@mail.localhost ",
        # Too long: 64 characters.
        f"{SLUG_64}@mail.localhost",
        f"{SLUG_64}+lead@mail.localhost",
        # Hyphen rules: not first, not last.
        "-acme@mail.localhost",
        "acme-@mail.localhost",
        "-@mail.localhost",
        "acme-+lead@mail.localhost",
        # Characters outside [a-z0-9-].
        "ac_me@mail.localhost",
        "ac.me@mail.localhost",
        "acmé@mail.localhost",
        "\uff41\uff43\uff4d\uff45@mail.localhost",
    ],
)
def test_parse_refuses_everything_else(address: str) -> None:
    assert parse(address, OURS) is None


@pytest.mark.parametrize(
    "address",
    [
        # KELVIN SIGN lower-cases to ASCII "k"; LATIN CAPITAL I WITH DOT to "i" + a combining dot.
        "\u212acme@mail.localhost",
        "\u212a@mail.localhost",
        "\u0130acme@mail.localhost",
    ],
)
def test_parse_refuses_non_ascii_letters_that_lower_case_to_ascii(address: str) -> None:
    """Only ASCII is case-folded: a non-ASCII local part never aliases an ASCII slug."""
    assert parse(address, OURS) is None


def test_parse_matches_any_of_our_domains_and_keeps_the_one_used() -> None:
    assert parse("acme@crm.example.test", BOTH) == SmartAddress(
        "acme", Action.NOTE, "crm.example.test"
    )
    assert parse("acme@CRM.example.test", BOTH) == SmartAddress(
        "acme", Action.NOTE, "crm.example.test"
    )
    assert parse("acme@crm.example.test", OURS) is None
    assert parse("acme@mail.localhost", ()) is None


@pytest.mark.parametrize(
    ("slug", "valid"),
    [
        ("acme", True),
        ("a", True),
        ("7", True),
        ("acme-2", True),
        ("a-b-c", True),
        ("a--b", True),
        ("2acme", True),
        (SLUG_63, True),
        ("a" + "-" * 61 + "b", True),
        (SLUG_64, False),
        ("a" + "-" * 62 + "b", False),
        ("", False),
        ("-acme", False),
        ("acme-", False),
        ("-", False),
        ("Acme", False),
        ("ACME", False),
        ("a+b", False),
        ("a.b", False),
        ("a_b", False),
        ("a b", False),
        ("acme\n", False),
        ("acme\x00", False),
        ("acmé", False),
        ("\u212acme", False),
    ],
)
def test_is_valid_slug(slug: str, valid: bool) -> None:
    assert is_valid_slug(slug) is valid


@pytest.mark.parametrize(
    ("slug", "action", "expected"),
    [
        ("acme", Action.NOTE, "acme@mail.localhost"),
        ("acme", Action.CONTACT, "acme+contact@mail.localhost"),
        ("acme", Action.LEAD, "acme+lead@mail.localhost"),
        (SLUG_63, Action.LEAD, f"{SLUG_63}+lead@mail.localhost"),
    ],
)
def test_format_address_round_trips_through_parse(slug: str, action: Action, expected: str) -> None:
    assert format_address(slug, action, "mail.localhost") == expected
    assert parse(expected, OURS) == SmartAddress(slug, action, "mail.localhost")
    assert str(SmartAddress(slug, action, "mail.localhost")) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("acme@mail.localhost", ("acme", "mail.localhost")),
        ("Acme+Lead@MAIL.Localhost", ("Acme+Lead", "mail.localhost")),
        ("acme@mail.localhost.", ("acme", "mail.localhost")),
        ('"a@b"@mail.localhost', ('"a@b"', "mail.localhost")),
        ("a@b@Other.Test", ("a@b", "other.test")),
        ("user@[127.0.0.1]", ("user", "[127.0.0.1]")),
        ("x%y@mail.localhost", ("x%y", "mail.localhost")),
        ("acme", None),
        ("@mail.localhost", None),
        ("acme@", None),
        ("@", None),
        ("", None),
    ],
)
def test_split_address(address: str, expected: tuple[str, str] | None) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize(
    ("address", "ours"),
    [
        ("acme@mail.localhost", True),
        ("ACME@MAIL.LOCALHOST", True),
        ("x%y@MAIL.localhost", True),
        ("a!b@mail.localhost", True),
        ('"anything at all"@mail.localhost', True),
        ("nobody+nope@mail.localhost", True),
        ("acme@mail.localhost.", True),
        ("acme@x.mail.localhost", False),
        ("acme@mail.localhost.evil.test", False),
        ("acme@evilmail.localhost", False),
        ("acme@[127.0.0.1]", False),
        ("acme@other.test", False),
        ("acme@mail.localhost@other.test", False),
        ("@mail.localhost", False),
        ("mail.localhost", False),
        ("", False),
    ],
)
def test_is_our_domain(address: str, ours: bool) -> None:
    assert is_our_domain(address, OURS) is ours


ACCOUNTS = {"acme": 1, "globex": 2, SLUG_63: 3, "kilo": 4}


def lookup(slug: str) -> int | None:
    return ACCOUNTS.get(slug)


@pytest.mark.parametrize(
    ("address", "account_id", "action"),
    [
        ("acme@mail.localhost", 1, Action.NOTE),
        ("ACME@Mail.Localhost", 1, Action.NOTE),
        ("acme+contact@mail.localhost", 1, Action.CONTACT),
        ("acme+lead@mail.localhost", 1, Action.LEAD),
        ("globex+LEAD@mail.localhost", 2, Action.LEAD),
        (f"{SLUG_63}@mail.localhost", 3, Action.NOTE),
        ("KILO@mail.localhost", 4, Action.NOTE),
    ],
)
def test_resolve_routes_known_accounts(address: str, account_id: int, action: Action) -> None:
    route = resolve(address, OURS, lookup)
    assert isinstance(route, Route)
    assert route.account_id == account_id
    assert route.action is action
    assert route.address == parse(address, OURS)


@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        # Our domain, but no such account or not the strict form: unknown address.
        ("nobody@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("nobody+lead@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("acme+nope@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("acme+note@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ('"acme"@mail.localhost', Refusal.UNKNOWN_ADDRESS),
        ("acme%other.test@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("other.test!acme@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("@relay.test:acme@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("acme\x00@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        (f"{SLUG_64}@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("-acme@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        ("\u212ailo@mail.localhost", Refusal.UNKNOWN_ADDRESS),
        # Anywhere else: we do not relay.
        ("acme@other.test", Refusal.RELAY_DENIED),
        ("acme@x.mail.localhost", Refusal.RELAY_DENIED),
        ("acme@mail.localhost.evil.test", Refusal.RELAY_DENIED),
        ("acme@[127.0.0.1]", Refusal.RELAY_DENIED),
        ("user@[127.0.0.1]", Refusal.RELAY_DENIED),
        ("acme@mail.localhost@other.test", Refusal.RELAY_DENIED),
        ("@mail.localhost", Refusal.RELAY_DENIED),
        ("acme", Refusal.RELAY_DENIED),
        ("", Refusal.RELAY_DENIED),
    ],
)
def test_resolve_refuses(address: str, refusal: Refusal) -> None:
    assert resolve(address, OURS, lookup) is refusal


def test_resolve_looks_up_only_the_lower_case_slug_of_a_smart_address() -> None:
    asked: list[str] = []

    def recording_lookup(slug: str) -> int | None:
        asked.append(slug)
        return ACCOUNTS.get(slug)

    resolve("ACME+Lead@mail.localhost", OURS, recording_lookup)
    resolve("nobody@mail.localhost", OURS, recording_lookup)
    resolve('"acme"@mail.localhost', OURS, recording_lookup)
    resolve("acme@other.test", OURS, recording_lookup)
    assert asked == ["acme", "nobody"]
