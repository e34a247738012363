"""Property-based tests of the request models, beyond ``tests/unit/test_models.py``.

For any input hypothesis can think of: a name outside the catalogue is rejected with the field
named; any case-mix of a valid name is accepted and sent in upper case; every accepted date
form gives the same date; bodies round-trip through JSON and back through ``build``; and every
rejection is an ``SEIInvalidRequestError`` (a ``ValueError``) naming field, value and allowed.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pendulum
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.metrics import CalculationType, Category, Granularity, metric_names
from airflow_provider_sei.models import (
    ContributorReportRequest,
    TeamReportRequest,
    parse_date,
)

FIELDS = {
    Category.PRODUCTIVITY: "productivity_metrics",
    Category.EFFICIENCY: "efficiency_metrics",
    Category.CONTRIBUTOR: "metrics",
}
ALL_NAMES = {name for category in Category for name in metric_names(category)}
BASE = {"collection_id": "123", "date_start": "2024-01-01", "date_end": "2024-01-31"}


def case_mix(name: str) -> st.SearchStrategy[str]:
    """``name`` with each letter in either case and optional surrounding whitespace."""

    def mix(t: tuple[list[bool], str, str]) -> str:
        upper, before, after = t
        return (
            before
            + "".join(c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True))
            + after
        )

    return st.tuples(
        st.lists(st.booleans(), min_size=len(name), max_size=len(name)),
        st.sampled_from(["", " ", "\t", "  "]),
        st.sampled_from(["", " ", "\n"]),
    ).map(mix)


def build(category: Category, metrics: Any) -> Any:
    if category is Category.CONTRIBUTOR:
        return ContributorReportRequest.build(**BASE, metrics=metrics)
    return TeamReportRequest.build(**BASE, **{FIELDS[category]: metrics})


def sent_metrics(category: Category, request: Any) -> list[str]:
    body = request.to_json()
    key = {"productivity_metrics": "productivity", "efficiency_metrics": "efficiency",
           "metrics": "productivityContributors"}[FIELDS[category]]  # fmt: skip
    return body[key]["metrics"]


def assert_names_field(error: SEIInvalidRequestError, field: str, value: Any) -> None:
    assert isinstance(error, ValueError)
    assert error.field == field
    text = str(error)
    assert field in text
    assert repr(value) in text
    assert "Allowed:" in text


# -- metric names ---------------------------------------------------------------------------------


@given(category=st.sampled_from(list(Category)), name=st.text(min_size=1, max_size=40))
def test_any_name_outside_the_catalogue_is_rejected_with_the_field_named(category, name):
    assume("," not in name)  # a comma splits a string into several names
    assume(name.strip().upper() not in metric_names(category) and name.strip())
    with pytest.raises(SEIInvalidRequestError) as err:
        build(category, [name])
    assert_names_field(err.value, FIELDS[category], name)
    assert "metrics:" in err.value.allowed


@given(data=st.data(), category=st.sampled_from(list(Category)))
def test_any_case_mix_of_a_valid_name_is_accepted_and_sent_upper(data, category):
    names = data.draw(st.lists(st.sampled_from(metric_names(category)), min_size=1, max_size=4))
    given_names = [data.draw(case_mix(name)) for name in names]
    request = build(category, given_names)
    assert sent_metrics(category, request) == list(dict.fromkeys(names))


@given(data=st.data(), category=st.sampled_from(list(Category)))
def test_a_name_of_another_category_is_rejected_and_its_category_named(data, category):
    others = sorted(ALL_NAMES - set(metric_names(category)))
    name = data.draw(st.sampled_from(others))
    with pytest.raises(SEIInvalidRequestError) as err:
        build(category, [data.draw(case_mix(name))])
    assert err.value.field == FIELDS[category]
    assert "metrics" in err.value.allowed


@given(
    value=st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.binary(min_size=1),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1),
    )
)
def test_metrics_of_the_wrong_type_are_rejected(value):  # fmt: skip
    with pytest.raises(SEIInvalidRequestError) as err:
        build(Category.PRODUCTIVITY, value)
    assert err.value.field == "productivity_metrics"


# -- choices -----------------------------------------------------------------------------------


@given(data=st.data())
def test_granularity_and_calculation_type_in_any_case(data):
    granularity = data.draw(st.sampled_from(list(Granularity)))
    calculation = data.draw(st.sampled_from(list(CalculationType)))
    request = TeamReportRequest.build(
        **BASE,
        granularity=data.draw(case_mix(granularity.value)),
        calculation_type=data.draw(case_mix(calculation.value)),
        efficiency_metrics=[],
    )
    body = request.to_json()
    assert body["granularity"] == granularity.value
    assert body["efficiency"]["calculationType"] == calculation.value


@given(text=st.text(max_size=20))
def test_any_other_granularity_or_calculation_type_is_rejected(text):
    assume(text.strip().lower() not in {g.value for g in Granularity})
    with pytest.raises(SEIInvalidRequestError) as err:
        TeamReportRequest.build(**BASE, granularity=text)
    assert_names_field(err.value, "granularity", text)
    assume(text.strip().upper() not in {c.value for c in CalculationType})
    with pytest.raises(SEIInvalidRequestError) as err:
        TeamReportRequest.build(**BASE, calculation_type=text)
    assert_names_field(err.value, "calculation_type", text)


# -- ids -------------------------------------------------------------------------------------------


@given(collection=st.text(min_size=1, max_size=30))
def test_collection_ids_are_ascii_digit_ids_and_nothing_else(collection):
    # collectionId and teamRefId (a Number) name the same team: a name, a blank, a
    # superscript or full-width digit, a sign or a 19th digit is refused before any request.
    text = collection.strip().strip("'\"")
    if text.isascii() and text.isdigit() and len(text) <= 18:
        request = ContributorReportRequest.build(**{**BASE, "collection_id": collection})
        assert request.to_json()["collectionId"] == str(int(text))
    else:
        with pytest.raises(SEIInvalidRequestError) as err:
            ContributorReportRequest.build(**{**BASE, "collection_id": collection})
        assert_names_field(err.value, "collection_id", collection)


@given(digits=st.integers(min_value=19, max_value=6000))
def test_ids_longer_than_18_digits_are_refused_with_a_short_message(digits):
    for value in ("9" * digits, 10 ** (digits - 1)):
        with pytest.raises(SEIInvalidRequestError) as err:
            TeamReportRequest.build(**BASE, team_ref_id=value)
        assert err.value.field == "team_ref_id"
        assert len(str(err.value)) < 300


@given(ref=st.integers(min_value=0, max_value=2**53), as_text=st.booleans())
def test_team_ref_ids_non_negative_ints_or_digit_strings(ref, as_text):
    request = TeamReportRequest.build(**BASE, team_ref_id=str(ref) if as_text else ref)
    body = request.to_json()
    assert body["teamRefId"] == ref
    assert isinstance(body["teamRefId"], int)
    assert isinstance(body["collectionId"], str)


@given(
    ref=st.one_of(
        st.integers(max_value=-1),
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(min_size=1, max_size=10).filter(
            lambda t: not (t.strip().strip("'\"").isascii() and t.strip().strip("'\"").isdigit())
        ),
    )
)
def test_other_team_ref_ids_rejected(ref):  # fmt: skip
    assume(not (isinstance(ref, str) and ref.strip().lower() in ("", "none", "null")))  # default
    with pytest.raises(SEIInvalidRequestError) as err:
        TeamReportRequest.build(**BASE, team_ref_id=ref)
    assert err.value.field == "team_ref_id"


# -- dates -----------------------------------------------------------------------------------------


@given(
    day=st.dates(min_value=date(1970, 1, 2), max_value=date(9998, 12, 30)),
    moment=st.times(),
    offset_minutes=st.integers(min_value=-12 * 60, max_value=14 * 60),
    pad=st.sampled_from(["", " ", "\t"]),
)
def test_dates_in_every_accepted_form_give_the_same_day(day, moment, offset_minutes, pad):
    tz = timezone(timedelta(minutes=offset_minutes))
    aware = datetime.combine(day, moment, tzinfo=tz)
    forms = [
        day,
        datetime.combine(day, moment),
        aware,
        pendulum.instance(aware),
        pad + day.isoformat() + pad,
        aware.isoformat(),
        datetime.combine(day, moment).isoformat(),
        datetime.combine(day, time(12), tzinfo=timezone.utc).isoformat().replace("+00:00", "Z"),
    ]
    for form in forms:
        assert parse_date("date_start", form) == day, form


@given(text=st.text(max_size=25))
def test_any_other_date_text_is_rejected_with_the_field_named(text):
    try:
        parsed = parse_date("date_end", text)
    except SEIInvalidRequestError as err:
        assert_names_field(err, "date_end", text)
    else:  # accepted: then it really was a yyyy-MM-dd date or an ISO datetime
        assert parsed.isoformat() in text or "T" in text


@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.lists(st.text())))
def test_dates_of_the_wrong_type_are_rejected(value):
    with pytest.raises(SEIInvalidRequestError) as err:
        parse_date("date_start", value)
    assert err.value.field == "date_start"


# -- round trips ---------------------------------------------------------------------------------


def team_from_json(body: dict[str, Any]) -> TeamReportRequest:
    efficiency = body.get("efficiency")
    return TeamReportRequest.build(
        collection_id=body["collectionId"],
        date_start=body["dateStart"],
        date_end=body["dateEnd"],
        granularity=body["granularity"],
        team_ref_id=body.get("teamRefId"),
        productivity_metrics=body.get("productivity", {}).get("metrics")
        if "productivity" in body
        else None,
        efficiency_metrics=efficiency["metrics"] if efficiency else None,
        calculation_type=efficiency["calculationType"] if efficiency else None,
    )


def contributor_from_json(body: dict[str, Any]) -> ContributorReportRequest:
    return ContributorReportRequest.build(
        collection_id=body["collectionId"],
        date_start=body["dateStart"],
        date_end=body["dateEnd"],
        granularity=body["granularity"],
        include_ratings=body["includeRatings"],
        metrics=body["productivityContributors"]["metrics"],
    )


optional_metrics = lambda category: st.one_of(  # noqa: E731
    st.none(), st.lists(st.sampled_from(metric_names(category)), max_size=6)
)


@settings(max_examples=150)
@given(
    collection=st.text(alphabet="0123456789", min_size=1, max_size=18),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    days=st.integers(min_value=0, max_value=400),
    granularity=st.sampled_from(list(Granularity)),
    calculation=st.sampled_from(list(CalculationType)),
    productivity=optional_metrics(Category.PRODUCTIVITY),
    efficiency=optional_metrics(Category.EFFICIENCY),
    ref=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
)
def test_team_to_json_round_trips(
    collection, start, days, granularity, calculation, productivity, efficiency, ref
):
    request = TeamReportRequest.build(
        collection_id=collection,
        date_start=start,
        date_end=start + timedelta(days=days),
        granularity=granularity,
        team_ref_id=ref,
        productivity_metrics=productivity,
        efficiency_metrics=efficiency,
        calculation_type=calculation,
    )
    body = request.to_json()
    assert json.loads(json.dumps(body)) == body  # plain JSON types only
    assert body["collectionId"] == str(int(collection))
    assert body["teamRefId"] == (int(collection) if ref is None else ref)
    again = team_from_json(body)
    assert again.to_json() == body
    if request.efficiency_metrics is not None:
        assert again == request


@given(
    collection=st.text(alphabet="0123456789", min_size=1, max_size=18),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    days=st.integers(min_value=0, max_value=400),
    granularity=st.sampled_from(list(Granularity)),
    ratings=st.one_of(st.booleans(), st.sampled_from(["true", "FALSE", "True"])),
    metrics=optional_metrics(Category.CONTRIBUTOR),
)
def test_contributor_to_json_round_trips(collection, start, days, granularity, ratings, metrics):
    request = ContributorReportRequest.build(
        collection_id=collection,
        date_start=start.isoformat(),
        date_end=start + timedelta(days=days),
        granularity=granularity.value.upper(),
        include_ratings=ratings,
        metrics=metrics,
    )
    body = request.to_json()
    assert json.loads(json.dumps(body)) == body
    assert contributor_from_json(body) == request
    assert isinstance(body["includeRatings"], bool)
