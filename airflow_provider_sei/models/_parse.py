"""Parsers of loose input (templates render everything to strings): one per kind of value.

Each takes the field's name and raises ``SEIInvalidRequestError`` naming the field, the value
and what is allowed, so every parameter error reads the same way and none escapes as a bare
``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from typing import Any

from airflow_provider_sei.exceptions import SEIInvalidRequestError

NULLISH = frozenset({"", "none", "null"})  # what a template renders for a missing value
#: The longest id accepted: 18 digits always fit the API's 64-bit numbers.
MAX_ID_DIGITS = 18
_DATE_ALLOWED = "a yyyy-MM-dd string, a date, a datetime or a pendulum value"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def is_nullish(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NULLISH)


def parse_date(field: str, value: Any, tz: tzinfo | None = None) -> date:
    """Parse a ``date`` from a ``yyyy-MM-dd`` string, an ISO datetime string, a date or a datetime.

    A datetime that knows its offset is converted to ``tz`` (the DAG's timezone) before its
    date is taken: ``2024-01-01T23:30:00-05:00`` is 2024-01-02 in UTC.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10 and text.isascii():
                return date.fromisoformat(text)
            if "T" in text or " " in text:  # a rendered datetime, e.g. "{{ data_interval_start }}"
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
    if isinstance(value, datetime):  # pendulum.DateTime too; checked before date (a subclass)
        if value.tzinfo is not None and tz is not None:
            value = value.astimezone(tz)
        return value.date()
    if isinstance(value, date):
        return value
    raise SEIInvalidRequestError(field, shown(value), _DATE_ALLOWED)


def parse_id(field: str, value: Any) -> int:
    """Parse a non-negative integer id: an int, or ASCII digits (at most 18) from a template."""
    if isinstance(value, str):
        text = value.strip().strip("'\"")
        if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
            return int(text)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**MAX_ID_DIGITS:
        return value
    raise SEIInvalidRequestError(
        field, shown(value), f"a non-negative integer id of at most {MAX_ID_DIGITS} digits"
    )


def parse_int(field: str, value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    """Parse an integer within bounds; numeric strings and integral floats (templates) accepted."""
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            number = None
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    bounds = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    if not isinstance(number, int) or isinstance(number, bool):
        raise SEIInvalidRequestError(field, shown(value), bounds)
    if number < minimum or (maximum is not None and number > maximum):
        raise SEIInvalidRequestError(field, shown(value), bounds)
    return number


def parse_number(field: str, value: Any, *, minimum: float = 0.0) -> float:
    """Parse a finite number of at least ``minimum`` (seconds, rates); numeric strings accepted."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < minimum:
        raise SEIInvalidRequestError(field, shown(value), f"a number >= {minimum:g}")
    return number


def parse_budget(field: str, value: Any) -> float | None:
    """Parse a requests-per-minute budget: a positive number, or None, ``"None"`` or 0 for none."""
    if is_nullish(value):
        return None
    return parse_number(field, value, minimum=0.0) or None


def parse_bool(field: str, value: Any) -> bool:
    """Parse a bool; ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0`` from
    templates."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    raise SEIInvalidRequestError(field, shown(value), "True or False")


def parse_list(field: str, value: Any, *, what: str = "names") -> list[Any]:
    """Parse a list from a list, a tuple, a comma-separated string, or a list Jinja rendered to a
    string (``"['a', 'b']"``, without ``render_template_as_native_obj``). None gives []."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "(")) and text.endswith(("]", ")")):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise SEIInvalidRequestError(field, shown(value), f"a list of {what}") from None
            return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
        return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        return list(value)
    raise SEIInvalidRequestError(field, shown(value), f"a list of {what}")


def parse_choice(
    field: str, value: Any, choices: Iterable[str], *, default: str | None = None
) -> str:
    """One of ``choices`` (matched in any case), returned as the choice spells it."""
    options = tuple(choices)
    if is_nullish(value) and default is not None:
        return default
    if isinstance(value, str):
        wanted = value.strip().lower()
        for choice in options:
            if choice.lower() == wanted:
                return choice
    raise SEIInvalidRequestError(field, shown(value), one_of(options))


def one_of(values: Iterable[str]) -> str:
    listed = ", ".join(values)
    return f"one of {listed}" if listed else ""


def shown(value: Any, limit: int = 80) -> Any:
    """Return the value as it goes into a message: long strings and reprs cut to ``limit``."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an int past Python's int-to-str digit limit (4300 digits)
        return f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    if len(text) <= limit:
        return value
    return text[:limit] + f"... ({len(text)} characters)"
