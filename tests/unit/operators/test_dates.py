"""The date-range rule, unit by unit (the same rule is run for real in test_reports.py)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from types import SimpleNamespace

import pendulum
import pytest

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.operators._dates import default_range, resolve_date_range

UTC = pendulum.UTC


def ctx(start=None, end=None, run_after=None, tz="UTC"):
    context = {"dag": SimpleNamespace(timezone=pendulum.timezone(tz))}
    context["dag_run"] = SimpleNamespace(run_after=run_after)
    if start is not None:
        context["data_interval_start"] = start
        context["data_interval_end"] = end
    return context


def d(text):
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # weekly interval, exclusive end made inclusive
        (
            pendulum.datetime(2024, 1, 1),
            pendulum.datetime(2024, 1, 8),
            ("2024-01-01", "2024-01-07"),
        ),
        # monthly
        (
            pendulum.datetime(2024, 2, 1),
            pendulum.datetime(2024, 3, 1),
            ("2024-02-01", "2024-02-29"),
        ),
        # daily
        (
            pendulum.datetime(2024, 1, 5),
            pendulum.datetime(2024, 1, 6),
            ("2024-01-05", "2024-01-05"),
        ),
        # zero length (CronTriggerTimetable, manual runs of schedule=None): the day before
        (
            pendulum.datetime(2024, 1, 5, 12),
            pendulum.datetime(2024, 1, 5, 12),
            ("2024-01-04", "2024-01-04"),
        ),
        # shorter than a day (hourly): the last complete day
        (
            pendulum.datetime(2024, 1, 5, 10),
            pendulum.datetime(2024, 1, 5, 11),
            ("2024-01-04", "2024-01-04"),
        ),
        # a window that does not end at midnight: the day before the end's date
        (
            pendulum.datetime(2024, 1, 1, 6),
            pendulum.datetime(2024, 1, 8, 6),
            ("2024-01-01", "2024-01-07"),
        ),
    ],
)
def test_from_the_data_interval(start, end, expected):
    got = default_range(ctx(start, end))
    assert (got.start.isoformat(), got.end.isoformat()) == expected


def test_short_interval_logs_a_warning_with_the_fix(caplog):
    at = pendulum.datetime(2024, 1, 5)
    with caplog.at_level(logging.INFO, logger="airflow_provider_sei.operators._dates"):
        default_range(ctx(at, at))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "interval timetable" in record.getMessage()
    assert "date_start / date_end" in record.getMessage()


def test_a_whole_interval_logs_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="airflow_provider_sei.operators._dates"):
        default_range(ctx(pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8)))
    assert caplog.records == []


def test_dates_are_taken_in_the_dag_timezone():
    # Midnight in Amsterdam is 23:00 UTC the day before.
    start = pendulum.datetime(2024, 1, 7, 23, tz="UTC")
    end = pendulum.datetime(2024, 1, 14, 23, tz="UTC")
    got = default_range(ctx(start, end, tz="Europe/Amsterdam"))
    assert (got.start, got.end) == (d("2024-01-08"), d("2024-01-14"))
    assert default_range(ctx(start, end)).start == d("2024-01-07")  # in UTC


def test_without_a_data_interval_the_day_before_run_after(caplog):
    with caplog.at_level(logging.INFO, logger="airflow_provider_sei.operators._dates"):
        got = default_range(ctx(run_after=pendulum.datetime(2024, 3, 10, 4, 30)))
    assert (got.start, got.end) == (d("2024-03-09"), d("2024-03-09"))
    assert "run_after" in got.source
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "2024-03-09" in record.getMessage()


def test_run_after_is_taken_in_the_dag_timezone():
    # 2024-03-10 02:00 UTC is still 2024-03-09 in New York: the day before is 2024-03-08.
    at = pendulum.datetime(2024, 3, 10, 2)
    got = default_range(ctx(run_after=at, tz="America/New_York"))
    assert got.start == got.end == d("2024-03-08")
    assert default_range(ctx(run_after=at)).start == d("2024-03-09")


def test_an_offset_datetime_is_converted_to_the_dag_timezone_first():
    got = resolve_date_range("2024-01-01T23:30:00-05:00", "2024-01-05", ctx())
    assert got.start == d("2024-01-02")  # 04:30 UTC on the 2nd
    got = resolve_date_range("2024-01-01T23:30:00-05:00", "2024-01-05", ctx(tz="America/Chicago"))
    assert got.start == d("2024-01-01")  # 22:30 in Chicago on the 1st


def test_without_any_date_it_is_an_error():
    with pytest.raises(SEIInvalidRequestError, match="date_start"):
        default_range(ctx())


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-03",
        date(2024, 2, 3),
        datetime(2024, 2, 3, 10),
        pendulum.datetime(2024, 2, 3, 23, 59),
    ],
)
def test_explicit_values_win(value):
    week = ctx(pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8))
    got = resolve_date_range(value, value, week)
    assert (got.start, got.end) == (d("2024-02-03"), d("2024-02-03"))


def test_each_bound_independently():
    week = ctx(pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8))
    got = resolve_date_range("2023-12-01", None, week)
    assert (got.start, got.end) == (d("2023-12-01"), d("2024-01-07"))
    got = resolve_date_range(None, "2024-01-03", week)
    assert (got.start, got.end) == (d("2024-01-01"), d("2024-01-03"))


@pytest.mark.parametrize(("start", "end"), [("2024-02-01", None), (None, "2023-12-01")])
def test_a_bound_that_contradicts_the_default_names_both_fields(start, end):
    week = ctx(pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8))
    with pytest.raises(SEIInvalidRequestError) as err:
        resolve_date_range(start, end, week)
    assert "date_start" in str(err.value)
    assert "date_end" in str(err.value)
    assert "defaulted from the data interval" in str(err.value)


def test_explicit_inverted_range_is_rejected():
    with pytest.raises(SEIInvalidRequestError, match="date_start on or before date_end"):
        resolve_date_range("2024-01-09", "2024-01-08", ctx())


@pytest.mark.parametrize(
    "bad", ["2024-13-01", "yesterday", 20240101, "2024-1-1", "\uff12\uff10\uff12\uff14-01-01"]
)
def test_bad_explicit_values_name_the_field(bad):
    with pytest.raises(SEIInvalidRequestError) as err:
        resolve_date_range("2024-01-01", bad, ctx())
    assert err.value.field == "date_end"


@pytest.mark.parametrize("missing", [None, "", "None", " null "])
def test_a_bound_rendered_empty_takes_the_default(missing):
    # "{{ params.end }}" with no such param renders "" or "None": the bound was not given.
    week = ctx(pendulum.datetime(2024, 1, 1), pendulum.datetime(2024, 1, 8))
    got = resolve_date_range("2024-01-02", missing, week)
    assert (got.start, got.end) == (d("2024-01-02"), d("2024-01-07"))
