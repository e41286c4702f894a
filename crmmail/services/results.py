"""The services' typed results and their one JSON form, which every face prints or sends.

A result is a frozen dataclass that subclasses ``Result``. Its JSON object has the fields in
their declared order (a subclass adds its fields after its base's), a ``datetime`` in ISO 8601,
an enum as its value, and a field whose JSON name is no Python name declared with
``field(metadata=json_name("from"))``. A result is also a read-only mapping of that JSON
object (``result["from"]``, ``result.get("subject")``), as the faces show it, and equals any
mapping with the same JSON form: declare results ``@dataclass(frozen=True, eq=False)``.
"""

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime
from enum import Enum
from typing import Any


def json_name(name: str) -> dict[str, str]:
    """The metadata of a dataclass field called ``name`` in JSON (``from``, a Python keyword)."""
    return {"json": name}


class Result(Mapping[str, Any]):
    """Base of every service result: a frozen dataclass with one JSON form."""

    def to_json(self) -> dict[str, Any]:
        assert dataclasses.is_dataclass(self)
        return {
            field.metadata.get("json", field.name): to_json(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(dataclasses.fields(self))  # type: ignore[arg-type]


def to_json(value: Any) -> Any:
    """``value`` (results, lists and dicts of them, datetimes, enums) as plain JSON data.

    >>> from datetime import UTC
    >>> to_json({"at": datetime(2026, 1, 2, tzinfo=UTC), "ids": (1, 2)})
    {'at': '2026-01-02T00:00:00+00:00', 'ids': [1, 2]}
    """
    if isinstance(value, Result):
        return value.to_json()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value
