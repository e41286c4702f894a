"""Rendering mail templates: placeholders, escaping, the sandbox, missing fields and limits."""

import re

import pytest

from crmmail.errors import UserInputError
from crmmail.templates.render import (
    FIELDS,
    MAX_LOOP_STEPS,
    MAX_OUTPUT_CHARS,
    MAX_TEMPLATE_CHARS,
    Rendered,
    TemplateError,
    check_template,
    render_template,
)

CONTACT = {
    "id": 12,
    "name": "Ann Lee",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "a@x.test",
}
LEAD = {"id": 7, "name": "Big deal", "status": "open"}
USER = {"id": 3, "name": "Bo Sales", "email": "bo@crm.test"}
VALUES = {"contact": CONTACT, "lead": LEAD, "user": USER}


def test_placeholders_in_subject_and_body() -> None:
    rendered = render_template(
        "{{ contact.first_name }}, about {{ lead.name }}",
        "Dear {{ contact.name }} ({{ contact['email'] }}),\nlead is {{ lead.status }}.\n"
        "{{ user.name }} <{{ user.email }}>",
        False,
        VALUES,
    )
    assert rendered == Rendered(
        "Ann, about Big deal",
        "Dear Ann Lee (a@x.test),\nlead is open.\nBo Sales <bo@crm.test>",
        None,
    )


def test_every_offered_field_renders() -> None:
    body = " ".join(f"{{{{ {o}.{f} }}}}" for o, fs in FIELDS.items() for f in fs)
    check_template("", body)
    expected = " ".join(str(VALUES[o][f]) for o, fs in FIELDS.items() for f in fs)
    assert render_template("", body, False, VALUES).text == expected


def test_html_escapes_values_and_derives_the_text_part() -> None:
    contact = {**CONTACT, "name": "<script>alert(1)</script> & co"}
    rendered = render_template(
        "Hi {{ contact.name }}",
        "<p>Dear <b>{{ contact.name }}</b>,</p><p>See you</p>",
        True,
        {**VALUES, "contact": contact},
    )
    assert rendered.html == (
        "<p>Dear <b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</b>,</p><p>See you</p>"
    )
    assert rendered.text == "Dear <script>alert(1)</script> & co,\nSee you"
    assert rendered.subject == "Hi <script>alert(1)</script> & co"


def test_plain_template_is_not_escaped() -> None:
    contact = {**CONTACT, "name": "<script>x</script> & co"}
    rendered = render_template("s", "Dear {{ contact.name }}", False, {"contact": contact})
    assert rendered == Rendered("s", "Dear <script>x</script> & co", None)


def test_html_template_cannot_turn_escaping_off() -> None:
    with pytest.raises(TemplateError, match="autoescape"):
        check_template("", "{% autoescape false %}{{ contact.name }}{% endautoescape %}")
    with pytest.raises(TemplateError, match="unknown filter safe"):
        check_template("", "{{ contact.name|safe }}")


@pytest.mark.parametrize(
    "source",
    [
        "{{ contact.__class__ }}",
        "{{ contact['__class__'] }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self }}",
        "{{ self._TemplateReference__context }}",
        "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
        "{{ range.__self__ }}",
        "{{ joiner() }}",
        "{{ namespace(a=1) }}",
        "{{ lipsum() }}",
        "{{ dict(a=1) }}",
        "{{ ''|attr('__class__') }}",
        "{{ contact|map(attribute='__class__')|list }}",
        "{{ contact.items() }}",
        "{{ contact }}",
        "{{ contact[lead.name] }}",
        "{% set x = contact.name %}{{ x }}",
        "{% macro m() %}{{ contact.name }}{% endmacro %}{{ m() }}",
        "{% for x in range(3) recursive %}{{ loop(range(2)) }}{% endfor %}",
        "{% for c in contact.name %}{{ c }}{% endfor %}",
        "{{ 9 ** 9 ** 9 }}",
        "{{ 'a' * 100000000 }}",
        "{{ 'a'|center(100000000) }}",
        "{% include 'x' %}",
        "{% extends 'x' %}",
    ],
)
def test_escapes_from_the_sandbox_are_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        check_template("", source)
    for is_html in (False, True):
        with pytest.raises(TemplateError):
            render_template("", source, is_html, VALUES)
    with pytest.raises(TemplateError):
        render_template(source, "", False, VALUES)


def test_underscore_attributes_are_refused_with_the_reason() -> None:
    with pytest.raises(TemplateError, match="tries to reach beyond its fields: __class__"):
        check_template("", "{{ contact.__class__ }}")


def test_refusals_say_why() -> None:
    with pytest.raises(TemplateError, match=r"uses arithmetic \(\*\*\) at line 1"):
        check_template("", "{{ 9 ** 9 ** 9 }}")
    with pytest.raises(TemplateError, match=re.escape("uses {% set %} at line 2")):
        check_template("", "\n{% set x = contact.name %}")
    with pytest.raises(TemplateError, match="the for loop at line 1 is recursive"):
        check_template("", "{% for x in range(3) recursive %}{{ loop(range(2)) }}{% endfor %}")
    with pytest.raises(TemplateError, match="only range"):
        check_template("", "{{ contact.items() }}")


def test_what_passes_the_static_check_is_still_sandboxed() -> None:
    """``[].append`` is not called, so only the sandbox sees that it would modify a list (at
    save time too: ``check_template`` renders once with sample values)."""
    for refused in (check_template, lambda s, b: render_template(s, b, False, VALUES)):
        with pytest.raises(TemplateError, match=r"tries to reach beyond its fields: .*unsafe"):
            refused("", "{{ [].append }}")


def test_unknown_field_at_check_time() -> None:
    with pytest.raises(TemplateError) as info:
        check_template("Hi", "Call {{ contact.phone }}")
    assert str(info.value) == (
        "unknown field contact.phone: use one of contact.name, contact.first_name,"
        " contact.last_name, contact.email"
    )
    assert isinstance(info.value, UserInputError)


def test_unknown_object_at_check_time() -> None:
    with pytest.raises(TemplateError, match="unknown name company: use one of contact, lead, user"):
        check_template("{{ company.name }}", "")


def test_none_value_names_the_contact_and_field() -> None:
    contact = {**CONTACT, "first_name": None}
    with pytest.raises(TemplateError) as info:
        render_template("Hi {{ contact.first_name }}", "", False, {"contact": contact})
    assert str(info.value) == "contact 12 has no first_name: fill it in or change the template"


def test_absent_value_without_id() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("", "{{ user.email }}", False, {"user": {"name": "Bo"}})
    assert str(info.value) == "the user has no email: fill it in or change the template"


def test_empty_value_is_fine() -> None:
    contact = {**CONTACT, "first_name": ""}
    assert render_template("Hi {{ contact.first_name }}!", "", False, {"contact": contact}) == (
        Rendered("Hi !", "", None)
    )


def test_lead_used_without_a_lead() -> None:
    with pytest.raises(TemplateError) as info:
        render_template("", "About {{ lead.name }}", False, {"contact": CONTACT, "user": USER})
    assert str(info.value) == "the template uses lead.name but no lead was given: add --lead ID"
    with pytest.raises(TemplateError, match="no lead was given"):
        render_template("", "{{ lead.name }}", False, {"contact": CONTACT, "lead": None})


def test_default_makes_a_field_optional() -> None:
    body = "Hi {{ contact.first_name|default('there') }}{{ lead.name|d('') }}"
    contact = {**CONTACT, "first_name": None}
    assert render_template("", body, False, {"contact": contact}).text == "Hi there"
    assert render_template("", body, False, VALUES).text == "Hi AnnBig deal"


def test_only_offered_fields_reach_the_template() -> None:
    contact = {**CONTACT, "secret": "s3cret"}
    with pytest.raises(TemplateError, match=r"unknown field contact\.secret"):
        render_template("", "{{ contact.secret }}", False, {"contact": contact})
    with pytest.raises(TemplateError, match="unknown filter list"):
        render_template("", "{{ contact|list }}", False, {"contact": contact})


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateError) as info:
        check_template("Hi", "line one\n{% if contact.name %}\nno end")
    assert re.fullmatch(
        r"the body has a syntax error at line 2: Unexpected end of template\..*", str(info.value)
    )
    with pytest.raises(TemplateError, match="the subject has a syntax error at line 1: "):
        render_template("{{ contact.name", "", False, VALUES)


def test_subject_with_a_line_break_from_a_field_is_refused() -> None:
    contact = {**CONTACT, "name": "Ann\r\nBcc: victim@example.test"}
    with pytest.raises(TemplateError) as info:
        render_template("Hi {{ contact.name }}", "body", False, {"contact": contact})
    assert str(info.value) == (
        "the rendered subject contains a line break (from a field value or the template): remove it"
    )
    # The same value in the body is just text.
    assert "Bcc" in render_template("Hi", "{{ contact.name }}", False, {"contact": contact}).text


def test_subject_with_a_line_break_in_the_template_is_refused() -> None:
    with pytest.raises(TemplateError, match="the subject contains a line break"):
        check_template("Hi\n{{ contact.name }}", "")


def test_html_text_part_follows_blocks() -> None:
    rendered = render_template(
        "s",
        "<h1>News for {{ contact.first_name }}</h1><p>One</p><ul><li>a</li><li>b</li></ul>",
        True,
        VALUES,
    )
    assert rendered.text == "News for Ann\nOne\na\nb"


def test_if_and_for_over_range_are_allowed() -> None:
    body = (
        "{% if lead.status == 'open' %}open{% else %}closed{% endif %}:"
        "{% for i in range(3) %}{{ loop.index }}{% endfor %}"
    )
    check_template("", body)
    assert render_template("", body, False, VALUES).text == "open:123"


def test_loops_share_one_budget() -> None:
    half = MAX_LOOP_STEPS // 2
    fits = f"{{% for i in range({half}) %}}{{% endfor %}}" * 2
    assert render_template("", fits, False, VALUES).text == ""
    nested = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match=f"loops too much: at most {MAX_LOOP_STEPS} steps"):
        render_template("", nested, False, VALUES)
    with pytest.raises(TemplateError, match="loops too much"):
        render_template(
            "", "{% for i in range(1, 99999999999999999999999) %}{% endfor %}", False, VALUES
        )


def test_output_is_bounded() -> None:
    chunk = "x" * 1000
    body = f"{{% for i in range({MAX_LOOP_STEPS}) %}}{chunk}{{% endfor %}}"
    assert len(body) < MAX_TEMPLATE_CHARS
    with pytest.raises(TemplateError, match=f"too long: at most {MAX_OUTPUT_CHARS} characters"):
        render_template("", body, False, VALUES)


def test_template_size_is_bounded() -> None:
    with pytest.raises(TemplateError, match=f"the body is too long: at most {MAX_TEMPLATE_CHARS}"):
        check_template("", "x" * (MAX_TEMPLATE_CHARS + 1))
