"""Render a CRM mail template (subject and body) from contact, lead and user fields, or say why not.

Pure: no database, no sending. The service layer stores templates, calls ``check_template`` when
one is saved or edited, and ``render_template`` with plain field values when one is sent.

Two guards, one after the other:

1. A static check of the parsed template, at save time and again before every render. A mail
   template may only print ``{{ object.field }}`` for the objects and fields in ``FIELDS``, use
   ``{% if %}``, ``{% for x in range(n) %}`` (its variable and ``loop.index``-style fields inside
   the loop only), comparisons, ``~``, the filters in ``FILTERS`` and the tests in ``TESTS``.
   Everything else (``{% set %}``, macros, ``{% autoescape %}``, arithmetic, calls other than
   ``range``, attributes starting with ``_``, ``|safe``) is refused with the reason. Without
   ``{% set %}``, macros and recursive loops, the work a template can do is bounded by its own
   size times ``MAX_LOOP_STEPS``.

   At save time the template is also rendered once with ``SAMPLE_VALUES``, every field filled
   in: what fails then (a filter given the wrong arguments, a comparison of a text with a
   number, a loop over more than ``MAX_LOOP_STEPS``, something the sandbox forbids) would fail
   for every contact, since every field value is a string, so it is refused when saved rather
   than when someone sends.
2. Jinja2's ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``, no globals but a
   ``range`` that shares ``MAX_LOOP_STEPS`` among all the loops of one render, and the objects
   handed in as read-only mappings of strings holding only the offered fields. Output is read as
   a stream and refused past ``MAX_OUTPUT_CHARS``.

Field values are checked before rendering: a field the template uses must have a value (an
empty string is a value; ``None`` or no key is not), so that a half-filled email is never sent.
The one exception is a field printed through ``|default(...)``, e.g.
``{{ contact.first_name|default("there") }}`` or ``{{ lead.name|default("") }}``: the author has
said what to print instead, so neither the value nor the object is required.

The subject is rendered without escaping and refused (not cleaned) if it contains CR, LF or NUL:
a line break coming from a field value is a header-injection attempt or bad data, and either way
the user must see it. The HTML body is autoescaped; its text/plain alternative is derived from
the rendered HTML.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crmmail.connector.compose import text_of_html
from crmmail.errors import UserInputError

FIELDS: dict[str, tuple[str, ...]] = {
    "contact": ("name", "first_name", "last_name", "email"),
    "lead": ("name", "status"),
    "user": ("name", "email"),
}
FILTERS = (
    "capitalize",
    "d",
    "default",
    "e",
    "escape",
    "length",
    "lower",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
)
TESTS = (
    "defined",
    "divisibleby",
    "eq",
    "even",
    "ge",
    "gt",
    "in",
    "le",
    "lower",
    "lt",
    "ne",
    "none",
    "number",
    "odd",
    "string",
    "upper",
)
LOOP_FIELDS = (
    "index",
    "index0",
    "revindex",
    "revindex0",
    "first",
    "last",
    "length",
    "previtem",
    "nextitem",
)
SAMPLE_VALUES: dict[str, Mapping[str, object]] = {
    "contact": {"name": "Ann Lee", "first_name": "Ann", "last_name": "Lee", "email": "a@x.test"},
    "lead": {"name": "Big deal", "status": "open"},
    "user": {"name": "Bo Sales", "email": "bo@crm.test"},
}
MAX_TEMPLATE_CHARS = 100 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024
MAX_LOOP_STEPS = 10_000

ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.For,
    nodes.Name,
    nodes.Const,
    nodes.Tuple,
    nodes.List,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.Call,
    nodes.Keyword,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.CondExpr,
    nodes.Concat,
)
REFUSED_NODE_NAMES = {
    "Assign": "{% set %}",
    "AssignBlock": "{% set %}",
    "Macro": "{% macro %}",
    "CallBlock": "{% call %}",
    "FilterBlock": "{% filter %}",
    "With": "{% with %}",
    "Scope": "{% autoescape %}",
    "ScopedEvalContextModifier": "{% autoescape %}",
    "EvalContextModifier": "{% autoescape %}",
    "Include": "{% include %}",
    "Import": "{% import %}",
    "FromImport": "{% from ... import %}",
    "Extends": "{% extends %}",
    "Block": "{% block %}",
    "Slice": "slicing",
    "Dict": "a dict",
}


class TemplateError(UserInputError):
    """A template that cannot be saved or rendered; the message says what is wrong and what to do.

    >>> check_template("Hello {{ contact.phone }}", "")
    Traceback (most recent call last):
    crmmail.templates.render.TemplateError: unknown field contact.phone: use one of contact.name, \
contact.first_name, contact.last_name, contact.email
    """


@dataclass(frozen=True)
class Rendered:
    """A rendered template: the subject, the text/plain body and, for HTML templates, the HTML."""

    subject: str
    text: str
    html: str | None


Reference = tuple[str, str, bool]
"""(object, field, required): required unless the field is printed through ``|default``."""


def check_template(subject: str, body: str, is_html: bool = False) -> None:
    """``None``, or a ``TemplateError`` saying why the template cannot be saved.

    >>> check_template("Hi {{ contact.first_name }}", "<p>{{ user.name }}</p>")
    >>> check_template("Hi {{ contact.first_name", "")
    Traceback (most recent call last):
    crmmail.templates.render.TemplateError: the subject has a syntax error at line 1: \
unexpected end of template, expected 'end of print statement'.
    >>> check_template("", "{{ contact.name|truncate('short') }}")
    Traceback (most recent call last):
    crmmail.templates.render.TemplateError: the template failed to render: '>=' not supported \
between instances of 'str' and 'int'
    """
    render_template(subject, body, is_html, SAMPLE_VALUES)


def render_template(
    subject: str,
    body: str,
    is_html: bool,
    values: Mapping[str, Mapping[str, object] | None],
) -> Rendered:
    """The template filled in with ``values``, or a ``TemplateError`` naming what is missing.

    ``values`` maps an object name to its fields, e.g. ``{"contact": {"id": 12, "name": "Ann
    Lee", "first_name": "Ann"}, "user": {...}}``; "lead" only when a lead was given. Only the
    fields in ``FIELDS`` reach the template, as strings; "id", if present, is used in messages.

    >>> r = render_template(
    ...     "Hello {{ contact.first_name }}",
    ...     "<p>Dear {{ contact.name }},</p><p>{{ user.name }}</p>",
    ...     True,
    ...     {"contact": {"name": "Ann <Lee>", "first_name": "Ann"}, "user": {"name": "Bo"}},
    ... )
    >>> r.subject, r.html
    ('Hello Ann', '<p>Dear Ann &lt;Lee&gt;,</p><p>Bo</p>')
    >>> print(r.text)
    Dear Ann <Lee>,
    Bo
    """
    exposed = _exposed(_references(subject, body), values)
    budget = _LoopBudget(MAX_LOOP_STEPS)
    rendered_subject = _render(subject, exposed, budget, autoescape=False)
    if any(ch in rendered_subject for ch in "\r\n\0"):
        raise TemplateError(
            "the rendered subject contains a line break (from a field value or the template):"
            " remove it"
        )
    rendered_body = _render(body, exposed, budget, autoescape=is_html)
    if is_html:
        return Rendered(rendered_subject, text_of_html(rendered_body), rendered_body)
    return Rendered(rendered_subject, rendered_body, None)


def _references(subject: str, body: str) -> list[Reference]:
    """The fields the template uses, in order, after the static check."""
    if any(ch in subject for ch in "\r\n\0"):
        raise TemplateError("the subject contains a line break: remove it")
    found: dict[Reference, None] = {}
    for what, source in (("subject", subject), ("body", body)):
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateError(f"the {what} is too long: at most {MAX_TEMPLATE_CHARS} characters")
        try:
            tree = _sandbox(autoescape=False, budget=_LoopBudget(0)).parse(source)
        except TemplateSyntaxError as e:
            raise TemplateError(
                f"the {what} has a syntax error at line {e.lineno}: {e.message}"
            ) from None
        for reference in _check(tree, None, {"range"}):
            found[reference] = None
    return list(found)


def _names(target: nodes.Node) -> Iterator[nodes.Name]:
    """The names a loop assigns (``x`` in ``for x in``, ``a`` and ``b`` in ``for a, b in``)."""
    if isinstance(target, nodes.Name):
        yield target
    else:
        yield from target.find_all(nodes.Name)


def _check(node: nodes.Node, parent: nodes.Node | None, locals_: set[str]) -> Iterator[Reference]:
    """The references under ``node``, raising ``TemplateError`` at the first thing refused.

    ``locals_`` are the names defined where ``node`` is: ``range``, and inside a loop its
    variables and ``loop``.
    """
    if not isinstance(node, ALLOWED_NODES):
        kind = type(node).__name__
        if isinstance(node, nodes.BinExpr):
            what = f"arithmetic ({node.operator})"
        else:
            what = REFUSED_NODE_NAMES.get(kind, kind.lower())
        raise TemplateError(
            f"the template uses {what}{_at(node)}, which mail templates do not allow:"
            " use {{ object.field }}, {% if %} and {% for x in range(n) %}"
        )
    if isinstance(node, nodes.Getattr) and _is_name(node.node, "loop", locals_):
        if node.attr not in LOOP_FIELDS:
            raise TemplateError(
                f"unknown loop field {node.attr}: use one of {', '.join(LOOP_FIELDS)}"
            )
    elif isinstance(node, nodes.Getattr | nodes.Getitem):
        defaulted = (
            isinstance(parent, nodes.Filter)
            and parent.name in ("d", "default")
            and parent.node is node
        )
        yield from _check_access(node, required=not defaulted)
    elif isinstance(node, nodes.Name):
        if node.name in FIELDS:
            if not isinstance(parent, nodes.Getattr | nodes.Getitem) or parent.node is not node:
                example = f"{node.name}.{FIELDS[node.name][0]}"
                raise TemplateError(
                    f"the template uses {node.name} itself: use one of its fields, e.g. {example}"
                )
        elif node.name not in locals_:
            raise TemplateError(f"unknown name {node.name}{_outside_loop(node)}")
    elif isinstance(node, nodes.Filter) and node.name not in FILTERS:
        raise TemplateError(f"unknown filter {node.name}: use one of {', '.join(FILTERS)}")
    elif isinstance(node, nodes.Test) and node.name not in TESTS:
        raise TemplateError(f"unknown test {node.name}: use one of {', '.join(TESTS)}")
    elif isinstance(node, nodes.Call) and not (
        isinstance(node.node, nodes.Name) and node.node.name == "range"
    ):
        raise TemplateError(
            f"the template calls a function{_at(node)}: only range(n) can be called"
        )
    elif isinstance(node, nodes.For) and node.recursive:
        raise TemplateError(f"the for loop{_at(node)} is recursive: loops can only count")
    elif isinstance(node, nodes.For) and not (
        isinstance(node.iter, nodes.Call)
        and isinstance(node.iter.node, nodes.Name)
        and node.iter.node.name == "range"
    ):
        raise TemplateError(f"the for loop{_at(node)} is not over range(n): loops can only count")
    if isinstance(node, nodes.For):
        yield from _check_loop(node, locals_)
        return
    for child in node.iter_child_nodes():
        yield from _check(child, node, locals_)


def _check_loop(loop: nodes.For, locals_: set[str]) -> Iterator[Reference]:
    """``_check`` of a loop: its variables and ``loop`` exist in its body only."""
    variables = {name.name for name in _names(loop.target)}
    yield from _check(loop.iter, loop, locals_)
    if loop.test is not None:
        yield from _check(loop.test, loop, locals_ | variables)
    for child in loop.body:
        yield from _check(child, loop, locals_ | variables | {"loop"})
    for child in loop.else_:
        yield from _check(child, loop, locals_)


def _is_name(node: nodes.Node, name: str, locals_: set[str]) -> bool:
    return isinstance(node, nodes.Name) and node.name == name and name in locals_


def _outside_loop(node: nodes.Name) -> str:
    """The end of the message for an unknown name."""
    if node.name == "loop":
        return f"{_at(node)}: loop.index and the like exist only inside a for loop"
    return f": use one of {', '.join(FIELDS)}"


def _at(node: nodes.Node) -> str:
    """ " at line N" where the parser recorded the line, else nothing."""
    return f" at line {node.lineno}" if node.lineno else ""


def _check_access(node: nodes.Getattr | nodes.Getitem, required: bool) -> Iterator[Reference]:
    """The reference ``object.field`` or ``object["field"]``, if that is what ``node`` is."""
    if isinstance(node, nodes.Getattr):
        field: object = node.attr
    elif isinstance(node.arg, nodes.Const):
        field = node.arg.value
    else:
        field = None
    if isinstance(field, str) and field.startswith("_"):
        raise TemplateError(f"the template tries to reach beyond its fields: {field}{_at(node)}")
    if isinstance(node.node, nodes.Name) and node.node.name in FIELDS:
        owner = node.node.name
        if not isinstance(field, str):
            raise TemplateError(
                f"the template computes a field of {owner}{_at(node)}:"
                f" write {owner}.{FIELDS[owner][0]}"
            )
        if field not in FIELDS[owner]:
            offered = ", ".join(f"{owner}.{f}" for f in FIELDS[owner])
            raise TemplateError(f"unknown field {owner}.{field}: use one of {offered}")
        yield owner, field, required


def _exposed(
    references: list[Reference], values: Mapping[str, Mapping[str, object] | None]
) -> dict[str, Mapping[str, str]]:
    """What the template sees: read-only mappings of the offered fields, as strings."""
    for owner, field, required in references:
        fields = values.get(owner)
        if not required:
            continue
        if fields is None:
            flag = "--as USER_EMAIL" if owner == "user" else f"--{owner} ID"
            raise TemplateError(
                f"the template uses {owner}.{field} but no {owner} was given: add {flag}"
            )
        if fields.get(field) is None:
            ident = fields.get("id")
            who = f"{owner} {ident}" if ident is not None else f"the {owner}"
            raise TemplateError(f"{who} has no {field}: fill it in or change the template")
    exposed: dict[str, Mapping[str, str]] = {}
    for owner, offered in FIELDS.items():
        fields = values.get(owner) or {}
        exposed[owner] = MappingProxyType(
            {f: str(fields[f]) for f in offered if fields.get(f) is not None}
        )
    return exposed


class _LoopBudget:
    """``range`` for templates, with one budget of steps shared by all loops of a render."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def __call__(self, *args: int) -> range:
        steps = range(*args)
        try:
            count = len(steps)
        except OverflowError:
            count = self.left + 1
        if count > self.left:
            raise TemplateError(
                f"the template loops too much: at most {MAX_LOOP_STEPS} steps in all"
            )
        self.left -= count
        return steps


def _sandbox(autoescape: bool, budget: _LoopBudget) -> ImmutableSandboxedEnvironment:
    """A sandbox with no globals but ``range``, the allowed filters and strict undefineds."""
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined)
    env.globals.clear()
    env.globals["range"] = budget
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.tests = {name: env.tests[name] for name in TESTS}
    return env


def _render(
    source: str, exposed: dict[str, Mapping[str, str]], budget: _LoopBudget, autoescape: bool
) -> str:
    """``source`` rendered, read chunk by chunk so that a runaway template stops early."""
    parts: list[str] = []
    size = 0
    try:
        template = _sandbox(autoescape, budget).from_string(source)
        for part in template.generate(exposed):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(
                    f"the rendered template is too long: at most {MAX_OUTPUT_CHARS} characters"
                )
            parts.append(part)
    except SecurityError as e:
        raise TemplateError(f"the template tries to reach beyond its fields: {e}") from None
    except UndefinedError as e:
        raise TemplateError(f"the template uses something undefined: {e}") from None
    except (TypeError, ValueError, ArithmeticError, jinja2.TemplateError) as e:
        raise TemplateError(f"the template failed to render: {e}") from None
    return "".join(parts)
