"""Manifest columns declared on the records they come from.

A record field whose type carries an Arrow type (`String`, `Int32`, ... below; `Float64 | None`
for a column that may be null) is a column of that record's manifest file, in field order. The
record's module keeps each column's description (the contract, docs/manifest.md) in a table
beside the class. `arrow_schema()` reads the schema off the record class and that table,
`manifest_row()` the values off a record. Fields of plain types travel with the record but stay
out of the manifest.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import pyarrow as pa

NULLABLE = "nullable"  # marks a column that may be null although its field is always set in flight

String = Annotated[str, pa.string()]
Int32 = Annotated[int, pa.int32()]
Int64 = Annotated[int, pa.int64()]
Float64 = Annotated[float, pa.float64()]
Bool = Annotated[bool, pa.bool_()]
TimestampUTC = Annotated[datetime, pa.timestamp("ms", tz="UTC")]


def columns(record: type) -> dict[str, tuple[pa.DataType, bool]]:
    """Column name -> (Arrow type, nullable), in field order."""
    hints = typing.get_type_hints(record, include_extras=True)
    found = {}
    for f in dataclasses.fields(record):
        hint = hints[f.name]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
        inner = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
        if typing.get_origin(inner) is Annotated:
            arrow, *marks = inner.__metadata__
            found[f.name] = (arrow, optional or NULLABLE in marks)
    return found


def arrow_schema(record: type, descriptions: Mapping[str, str]) -> pa.Schema:
    """The columns of a record class, in field order, each with its description as metadata."""
    found = columns(record)
    if set(found) != set(descriptions):
        raise ValueError(f"{record.__name__}: columns and descriptions differ: {set(found) ^ set(descriptions)}")
    return pa.schema(
        pa.field(name, arrow, nullable=nullable, metadata={"description": descriptions[name]})
        for name, (arrow, nullable) in found.items()
    )


def manifest_row(record: Any) -> dict[str, Any]:
    """A record's columns and their values, as the manifest writes them."""
    return {name: getattr(record, name) for name in columns(type(record))}
