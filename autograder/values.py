"""Forgiving comparisons where a learner would be right: "5" == 5, money within a cent."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

MONEY_TOLERANCE = 0.01


def as_int(value: Any) -> int | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def close(value: Any, want: float, tolerance: float = MONEY_TOLERANCE) -> bool:
    try:
        return abs(float(value) - want) <= tolerance + 1e-9
    except (TypeError, ValueError):
        return False


def describe_value(value: Any, limit: int = 120) -> str:
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    kind = type(value).__name__
    return "nothing (None)" if value is None else f"{kind} {text}"


def normalize_row(row: Any, columns: Iterable[str]) -> tuple | None:
    """(id, name, age)-like tuple with numbers as ints and text stripped; None if not a row."""
    if isinstance(row, dict):
        lowered = {str(k).lower(): v for k, v in row.items()}
        values = [lowered.get(c) for c in columns]
    elif isinstance(row, list | tuple):
        values = list(row)[:len(list(columns))]
    else:
        return None
    out = []
    for v in values:
        n = as_int(v)
        out.append(n if n is not None else (str(v).strip() if v is not None else None))
    return tuple(out)


def row_differences(got: list, want: list[tuple], columns: tuple[str, ...]) -> tuple[list, list]:
    """(missing, unexpected) rows, order ignored, duplicates counted."""
    have = Counter(normalize_row(r, columns) for r in got)
    need = Counter(want)
    missing = list((need - have).elements())
    extra = list((have - need).elements())
    return missing, extra


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text``, thousands separators ("1,178.66") allowed."""
    return [float(n) for n in _NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3})", "", text))]
