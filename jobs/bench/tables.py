"""Markdown tables of benchmark rows: one `Column` per cell, numbers right-aligned, no value as —."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# One column of a table: header, row field, format spec ("s": text, left-aligned; ">s": text,
# right-aligned; any other spec: a number, right-aligned).
Column = tuple[str, str, str]


def cell(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def table(rows: Iterable[dict[str, Any]], columns: Sequence[Column]) -> str:
    align = "|" + "|".join("---" if spec == "s" else "---:" for _, _, spec in columns) + "|"
    lines = ["| " + " | ".join(header for header, _, _ in columns) + " |", align]
    lines += ["| " + " | ".join(cell(row.get(field), spec) for _, field, spec in columns) + " |" for row in rows]
    return "\n".join(lines)
