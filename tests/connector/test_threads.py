"""The threading rules: subject normalisation, the counterpart, and the thread key."""

import hashlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from crmmail.connector.threads import (
    REPLY_FORWARD_PREFIXES,
    counterpart,
    normalized_subject,
    thread_key,
)

OURS = frozenset({"sales@our.test", "ann@our.test"})


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Quote", "quote"),
        ("RE: Quote", "quote"),
        ("re:Quote", "quote"),
        ("Fw: Quote", "quote"),
        ("FW: Quote", "quote"),
        ("Fwd: Quote", "quote"),
        ("AW: Angebot", "angebot"),
        ("WG: Angebot", "angebot"),
        ("SV: Tilbud", "tilbud"),
        ("VS: Tilbud", "tilbud"),
        ("VB: Offert", "offert"),
        ("VL: Tarjous", "tarjous"),
        ("TR: Devis", "devis"),
        ("RIF: Preventivo", "preventivo"),
        ("Antw: Offerte", "offerte"),
        ("Doorst: Offerte", "offerte"),
        ("Odp: Oferta", "oferta"),
        ("PD: Oferta", "oferta"),
        ("YNT: Teklif", "teklif"),
        ("RES: Orçamento", "orçamento"),
        ("ENC: Orçamento", "orçamento"),
        ("RV: Presupuesto", "presupuesto"),
        ("回复\uff1a报价", "报价"),
        ("答复: 报价", "报价"),
        ("转发\uff1a报价", "报价"),
        ("回覆\uff1a報價", "報價"),
        ("轉寄\uff1a報價", "報價"),
        # counters, spaces before the colon, the full-width colon
        ("RE[2]: Quote", "quote"),
        ("Re(3): Quote", "quote"),
        ("Re [12] : Quote", "quote"),
        ("Re^2: Quote", "quote"),
        ("Re : Quote", "quote"),
        ("Re\uff1a Quote", "quote"),
        # repeated and mixed
        ("Re: Re: Re: Quote", "quote"),
        ("Re: RE[2]: Fwd:  AW: Quote  for  you ", "quote for you"),
        ("AW: WG: SV: VS: TR: RIF: Antw: Fw: Quote", "quote"),
        ("Re:Re:Fwd:Quote", "quote"),
        ("  re :  FWD(2)\uff1aQuote", "quote"),
        # nothing but prefixes, or nothing at all
        ("Re:", ""),
        ("Re: Re:", ""),
        ("Re: Fwd: ", ""),
        ("", ""),
        ("   ", ""),
        # only leading prefixes go
        ("Quote Re: yours", "quote re: yours"),
        ("Re: Quote: Fwd: details", "quote: fwd: details"),
    ],
)
def test_prefixes_are_removed(subject: str, expected: str) -> None:
    assert normalized_subject(subject) == expected


def test_every_listed_prefix_is_removed_in_any_case() -> None:
    for prefix in REPLY_FORWARD_PREFIXES:
        for spelled in (prefix, prefix.upper(), prefix.capitalize()):
            assert normalized_subject(f"{spelled}: Quote") == "quote", spelled


@pytest.mark.parametrize(
    "subject",
    [
        "Recap: x",
        "Trial: y",
        "Sva: z",
        "Ref: order 1234",
        "Rev: 2",
        "Fwds: a",
        "Awesome: b",
        "Re c",
        "Re",
        "Fwd",
        "Re[x]: q",
        "Re-: q",
        "Are: we there",
        "[Re: list] topic",
    ],
)
def test_words_that_only_look_like_prefixes_stay(subject: str) -> None:
    assert normalized_subject(subject) == " ".join(subject.split()).casefold()


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quote\tfor\nyou", "quote for you"),
        ("Quote\r\n for   you", "quote for you"),
        ("Quote\u00a0for\u2009you", "quote for you"),
        ("\u3000Re:\u00a0Quote\u2028", "quote"),
        ("Re:\tQuote", "quote"),
        ("Re\u00a0: Quote", "quote"),
    ],
)
def test_whitespace_is_folded(subject: str, expected: str) -> None:
    assert normalized_subject(subject) == expected


def test_case_is_folded_not_just_lowered() -> None:
    assert normalized_subject("Re: STRASSE") == normalized_subject("straße")


# Text rich in the pieces the prefix rule is made of, so that the property meets stacked,
# broken and near-miss prefixes rather than only random letters.
_pieces = st.sampled_from(
    [
        *REPLY_FORWARD_PREFIXES,
        "RE",
        "Fwd",
        "\u017fv",
        "[2]",
        "(3)",
        "^4",
        ":",
        "\uff1a",
        " ",
        "\t",
        "\u00a0",
    ]
)
_subjects = st.one_of(
    st.text(),
    st.lists(st.one_of(_pieces, st.text(max_size=3)), max_size=12).map("".join),
)


@given(_subjects)
@example("Re: Re:")
@example("Re: : Re: x")
@example("\u017fv: x")
@example("Re:re")
@example("re: \u00a0re : x")
def test_normalized_subject_is_idempotent(subject: str) -> None:
    once = normalized_subject(subject)
    assert normalized_subject(once) == once


def test_same_subject_from_different_senders_is_two_threads() -> None:
    a = counterpart(False, "a@x.test", ["sales@our.test"], OURS)
    b = counterpart(False, "b@y.test", ["sales@our.test"], OURS)
    assert thread_key(a, "Quote for you") != thread_key(b, "Quote for you")


def test_question_and_our_reply_are_one_thread() -> None:
    question = thread_key(counterpart(False, "A@X.test", ["sales@our.test"], OURS), "Quote for you")
    reply = thread_key(
        counterpart(True, "sales@our.test", ["a@x.test"], OURS), "Re: Quote  for you"
    )
    assert question == reply


def test_different_subjects_are_different_threads() -> None:
    assert thread_key("a@x.test", "Quote") != thread_key("a@x.test", "Invoice")


def test_the_key_does_not_run_counterpart_and_subject_together() -> None:
    assert thread_key("a@x.test", "b quote") != thread_key("a@x.testb", "quote")


def test_the_key_is_a_fixed_format_because_it_is_stored() -> None:
    expected = hashlib.sha256(b"a@x.test\0quote for you").hexdigest()
    assert thread_key("A@X.test", "RE: Quote  for you") == expected
    assert len(expected) <= 300


def test_a_received_message_is_from_its_sender() -> None:
    assert counterpart(False, "A@X.test", ["sales@our.test", "b@y.test"], OURS) == "a@x.test"


def test_a_sent_message_is_with_its_first_external_recipient() -> None:
    recipients = ["ann@our.test", "Sales@Our.test", "b@y.test", "c@z.test"]
    assert counterpart(True, "sales@our.test", recipients, OURS) == "b@y.test"


def test_own_addresses_are_compared_lower_cased() -> None:
    assert counterpart(True, "x@our.test", ["ANN@our.test", "b@y.test"], ["Ann@Our.test"]) == (
        "b@y.test"
    )


def test_a_sent_message_with_only_internal_recipients_is_with_the_first() -> None:
    assert counterpart(True, "sales@our.test", ["Ann@our.test", "sales@our.test"], OURS) == (
        "ann@our.test"
    )


def test_a_sent_message_without_recipients_has_no_counterpart() -> None:
    assert counterpart(True, "sales@our.test", [], OURS) == ""
    assert counterpart(True, "sales@our.test", [""], OURS) == ""
