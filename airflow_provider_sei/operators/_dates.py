"""The date range a report covers when the operator is not given one.

The rule, in the DAG's timezone (each bound independently; an explicit value always wins):

* ``date_start`` / ``date_end`` given (a ``yyyy-MM-dd`` string, a rendered template, a
  ``date``, a ``datetime`` or a pendulum value): used as they are; a datetime that carries an
  offset (``2024-01-01T23:30:00-05:00``) is converted to the DAG's timezone first.
* The run has a data interval: it starts on the date of ``data_interval_start`` and ends on
  the day before ``data_interval_end`` (the interval's end is exclusive). A weekly interval
  ``[2024-01-01, 2024-01-08)`` gives ``2024-01-01 .. 2024-01-07``.
* The interval is shorter than a day (zero length for ``CronTriggerTimetable`` without an
  ``interval``, the default for cron strings): the single day before ``data_interval_end``,
  the last complete day, with a warning.
* No data interval at all (a manual "Trigger" without a logical date, an asset-triggered
  run): the single day before ``dag_run.run_after``, with a warning.

When only one bound is explicit and the default of the other would fall on the wrong side
of it, the range is rejected with an error naming both fields, rather than silently
changed: the user gave a date the schedule contradicts, and should see it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pendulum

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.models._parse import is_nullish, parse_date

log = logging.getLogger(__name__)

_ONE_DAY = timedelta(days=1)
_SHORT_INTERVAL_HINT = (
    "The run's data interval is shorter than a day, so the report covers the last complete "
    "day only. For weekly or monthly windows, schedule the DAG with an interval timetable "
    "(CronDataIntervalTimetable, CronTriggerTimetable(..., interval=...) or "
    "DeltaDataIntervalTimetable), or pass date_start / date_end."
)
_NO_INTERVAL_HINT = (
    "This run has no data interval (a manual trigger without a logical date, or an "
    "asset-triggered run), so the report covers %s, the day before the run, only. Pass "
    "date_start / date_end (or trigger with a logical date) for another range."
)


@dataclass(frozen=True)
class DateRange:
    """An inclusive report range and where its defaults came from (for the log)."""

    start: date
    end: date
    source: str


def resolve_date_range(date_start: Any, date_end: Any, context: Any) -> DateRange:
    """Return the report's inclusive ``(start, end)``: explicit values, else the rule above.

    :param date_start: the operator's rendered ``date_start``, or None for the default.
    :param date_end: the operator's rendered ``date_end``, or None for the default.
    :param context: the task's Airflow context (``dag``, ``dag_run``, ``data_interval_*``).
    """
    tz = _timezone(context)
    start = None if is_nullish(date_start) else parse_date("date_start", date_start, tz)
    end = None if is_nullish(date_end) else parse_date("date_end", date_end, tz)
    if start is not None and end is not None:
        _check_order(start, end, "")
        return DateRange(start, end, "date_start and date_end")
    default = default_range(context)
    if start is None and end is None:
        return default
    if start is None:
        assert end is not None
        _check_order(default.start, end, f"; date_start defaulted from {default.source}")
        return DateRange(default.start, end, f"date_end; date_start from {default.source}")
    _check_order(start, default.end, f"; date_end defaulted from {default.source}")
    return DateRange(start, default.end, f"date_start; date_end from {default.source}")


def default_range(context: Any) -> DateRange:
    """Return the range the run's data interval (or, without one, its ``run_after``) stands for."""
    tz = _timezone(context)
    interval_start = context.get("data_interval_start")
    interval_end = context.get("data_interval_end")
    if interval_start is not None and interval_end is not None:
        end = _local_date(interval_end, tz) - _ONE_DAY
        start = _local_date(interval_start, tz)
        if start <= end:
            return DateRange(start, end, "the data interval")
        log.warning(_SHORT_INTERVAL_HINT)
        return DateRange(end, end, "the last complete day before the data interval's end")
    run_after = getattr(context.get("dag_run"), "run_after", None)
    if run_after is None:
        raise SEIInvalidRequestError(
            "date_start", None, "a date: this run has neither a data interval nor a run_after"
        )
    day = _local_date(run_after, tz) - _ONE_DAY
    log.warning(_NO_INTERVAL_HINT, day)
    return DateRange(day, day, "the day before the run's run_after (no data interval)")


def _check_order(start: date, end: date, note: str) -> None:
    if start > end:
        hint = " (give both date_start and date_end, or neither)" if note else ""
        raise SEIInvalidRequestError(
            "date_start/date_end",
            f"{start.isoformat()}..{end.isoformat()}",
            f"date_start on or before date_end{note}{hint}",
        )


def _timezone(context: Any) -> Any:
    dag = context.get("dag")
    return getattr(dag, "timezone", None) or pendulum.UTC


def _local_date(value: Any, tz: Any) -> date:
    if isinstance(value, str):  # a context that came through serialization
        value = pendulum.parse(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=pendulum.UTC)
        return pendulum.instance(value).in_timezone(tz).date()
    if isinstance(value, date):
        return value
    raise TypeError(f"Expected a datetime, got {value!r}")
