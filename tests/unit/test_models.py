"""The request models: the page's field tables are the spec."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.metrics import (
    CONTRIBUTOR_METRICS,
    EFFICIENCY_METRICS,
    TEAM_PRODUCTIVITY_METRICS,
    CalculationType,
    Category,
    Granularity,
    metric_names,
)
from airflow_provider_sei.models import ContributorReportRequest, TeamReportRequest

TEAM = dict(collection_id="123", date_start="2024-01-01", date_end="2024-03-31")
CONTRIB = dict(collection_id="1", date_start="2025-11-03", date_end="2025-11-30")


def test_catalogue_sizes_match_the_page():
    assert len(TEAM_PRODUCTIVITY_METRICS) == 6
    assert len(EFFICIENCY_METRICS) == 5
    assert len(CONTRIBUTOR_METRICS) == 7
    assert [g.value for g in Granularity] == ["daily", "weekly", "monthly"]
    assert [c.value for c in CalculationType] == ["MEAN", "MEDIAN", "P90", "P95"]


def test_team_body_matches_the_page_example():
    request = TeamReportRequest.build(
        collection_id="123",
        date_start="2024-01-01",
        date_end="2024-12-31",
        team_ref_id=123,
        granularity="weekly",
        productivity_metrics=["PR_VELOCITY_PER_DEV", "CODING_DAYS_PER_DEV"],
        efficiency_metrics=["LEAD_TIME_FOR_CHANGES", "DEPLOYMENT_FREQUENCY"],
        calculation_type="MEAN",
    )
    assert request.to_json() == {
        "collectionId": "123",
        "dateStart": "2024-01-01",
        "dateEnd": "2024-12-31",
        "teamRefId": 123,
        "granularity": "weekly",
        "productivity": {"metrics": ["PR_VELOCITY_PER_DEV", "CODING_DAYS_PER_DEV"]},
        "efficiency": {
            "metrics": ["LEAD_TIME_FOR_CHANGES", "DEPLOYMENT_FREQUENCY"],
            "calculationType": "MEAN",
        },
    }


def test_contributor_body_matches_the_page_example():
    request = ContributorReportRequest.build(
        **CONTRIB, granularity="WEEKLY", include_ratings=True, metrics=[]
    )
    body = request.to_json()
    assert body["collectionId"] == "1"
    assert body["granularity"] == "weekly"
    assert body["includeRatings"] is True
    assert body["productivityContributors"] == {"metrics": []}
    assert request.expected_metrics() == metric_names(Category.CONTRIBUTOR)


def test_json_types_collection_id_string_team_ref_id_number():
    body = TeamReportRequest.build(
        collection_id=6036, date_start="2024-01-01", date_end="2024-01-01"
    ).to_json()
    assert body["collectionId"] == "6036"
    assert body["teamRefId"] == 6036


def test_team_ref_id_defaults_only_for_numeric_collection_ids():
    assert TeamReportRequest.build(**TEAM).team_ref_id == 123
    request = TeamReportRequest.build(**{**TEAM, "collection_id": "abc"})
    assert request.team_ref_id is None
    assert "teamRefId" not in request.to_json()
    assert TeamReportRequest.build(**TEAM, team_ref_id="456").team_ref_id == 456


def test_both_categories_none_means_all_of_both():
    request = TeamReportRequest.build(**TEAM)
    body = request.to_json()
    assert body["productivity"] == {"metrics": []}
    assert body["efficiency"] == {"metrics": [], "calculationType": "MEAN"}
    assert len(request.expected_metrics()) == 11


def test_one_category_leaves_the_other_out():
    body = TeamReportRequest.build(**TEAM, efficiency_metrics=[]).to_json()
    assert "productivity" not in body
    assert body["efficiency"]["metrics"] == []


def test_metric_names_any_case_sent_upper_and_deduplicated():
    request = TeamReportRequest.build(
        **TEAM,
        productivity_metrics=["coding_days_per_dev", " PR_Velocity_Per_Dev", "CODING_DAYS_PER_DEV"],
    )
    assert request.productivity_metrics == ("CODING_DAYS_PER_DEV", "PR_VELOCITY_PER_DEV")


def test_comma_separated_string_is_a_list():
    request = ContributorReportRequest.build(**CONTRIB, metrics="pr_velocity, coding_days")
    assert request.metrics == ("PR_VELOCITY", "CODING_DAYS")


@pytest.mark.parametrize(
    "rendered", ["['pr_velocity', 'CODING_DAYS']", '["PR_VELOCITY","coding_days"]']
)
def test_a_list_rendered_to_a_string_is_a_list(rendered):
    request = ContributorReportRequest.build(**CONTRIB, metrics=rendered)
    assert request.metrics == ("PR_VELOCITY", "CODING_DAYS")
    assert ContributorReportRequest.build(**CONTRIB, metrics="[]").metrics == ()


@pytest.mark.parametrize("rendered", ["['PR_VELOCITY'", "[PR_VELOCITY]", "['PR_VELOCITY', 'NOPE']"])
def test_a_broken_rendered_list_names_the_field(rendered):
    with pytest.raises(SEIInvalidRequestError, match="metrics") as info:
        ContributorReportRequest.build(**CONTRIB, metrics=rendered)
    assert "PR_VELOCITY" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-29",
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 23, 59),
        pendulum.datetime(2024, 2, 29, tz="UTC"),
        pendulum.date(2024, 2, 29),
        "2024-02-29T00:00:00+00:00",
        "2024-02-29T10:00:00Z",
    ],
)
def test_dates_in_every_accepted_form(value):
    request = TeamReportRequest.build(**{**TEAM, "date_start": value, "date_end": "2024-03-01"})
    assert request.to_json()["dateStart"] == "2024-02-29"


def test_calculation_type_default_and_any_case():
    assert TeamReportRequest.build(**TEAM).calculation_type is CalculationType.MEAN
    assert (
        TeamReportRequest.build(**TEAM, calculation_type="p90").calculation_type
        is CalculationType.P90
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"date_start": "2024-13-01"}, "date_start", "yyyy-MM-dd"),
        ({"date_start": "01/02/2024"}, "date_start", "yyyy-MM-dd"),
        ({"date_end": "None"}, "date_end", "yyyy-MM-dd"),
        ({"date_end": ""}, "date_end", "yyyy-MM-dd"),
        ({"date_end": 20240101}, "date_end", "yyyy-MM-dd"),
        ({"date_start": "2024-04-01"}, "date_start", "on or before date_end"),
        ({"collection_id": ""}, "collection_id", "non-empty"),
        ({"collection_id": "None"}, "collection_id", "non-empty"),
        ({"collection_id": None}, "collection_id", "non-empty"),
        ({"team_ref_id": "abc"}, "team_ref_id", "integer"),
        ({"team_ref_id": -1}, "team_ref_id", "integer"),
        ({"team_ref_id": True}, "team_ref_id", "integer"),
        ({"granularity": "hourly"}, "granularity", "daily, weekly, monthly"),
        ({"granularity": None}, "granularity", "daily, weekly, monthly"),
        ({"calculation_type": "AVG"}, "calculation_type", "MEAN, MEDIAN, P90, P95"),
        ({"productivity_metrics": ["LEAD_TIME_FOR_CHANGES"]}, "productivity_metrics", "efficiency"),
        ({"efficiency_metrics": ["CODING_DAYS_PER_DEV"]}, "efficiency_metrics", "productivity"),
        ({"efficiency_metrics": ["NOPE"]}, "efficiency_metrics", "DEPLOYMENT_FREQUENCY"),
        ({"productivity_metrics": [1]}, "productivity_metrics", "PR_VELOCITY_PER_DEV"),
        ({"productivity_metrics": {"a": 1}}, "productivity_metrics", "a list of"),
    ],
)
def test_invalid_team_input_names_field_value_and_allowed(kwargs, field, hint):
    with pytest.raises(SEIInvalidRequestError) as info:
        TeamReportRequest.build(**{**TEAM, **kwargs})
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    message = str(info.value)
    assert field in message
    assert hint in message


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"metrics": ["PR_VELOCITY_PER_DEV"]}, "metrics", "PR_VELOCITY"),
        ({"metrics": ["LEAD_TIME_FOR_CHANGES"]}, "metrics", "efficiency"),
        ({"include_ratings": "yes"}, "include_ratings", "True or False"),
        ({"granularity": "quarterly"}, "granularity", "monthly"),
    ],
)
def test_invalid_contributor_input(kwargs, field, hint):
    with pytest.raises(SEIInvalidRequestError) as info:
        ContributorReportRequest.build(**{**CONTRIB, **kwargs})
    assert info.value.field == field
    assert hint in str(info.value)


def test_include_ratings_from_rendered_strings():
    assert ContributorReportRequest.build(**CONTRIB, include_ratings="True").include_ratings is True
    assert (
        ContributorReportRequest.build(**CONTRIB, include_ratings="false").include_ratings is False
    )


def test_invalid_input_fails_the_task_without_retries():
    from airflow_provider_sei._compat import AirflowFailException

    assert issubclass(SEIInvalidRequestError, AirflowFailException)


def test_invalid_request_error_survives_pickling():
    import pickle

    error = SEIInvalidRequestError("granularity", "hourly", "one of daily, weekly, monthly")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error)
    assert again.field == "granularity"


@given(
    start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
    days=st.integers(min_value=0, max_value=4000),
    granularity=st.sampled_from(["daily", "WEEKLY", "Monthly"]),
    metrics=st.lists(st.sampled_from(metric_names(Category.EFFICIENCY)), max_size=5),
)
def test_valid_ranges_round_trip(start, days, granularity, metrics):
    end = start + dt.timedelta(days=days)
    body = TeamReportRequest.build(
        collection_id="7",
        date_start=start.isoformat(),
        date_end=end,
        granularity=granularity,
        efficiency_metrics=[m.lower() for m in metrics],
    ).to_json()
    assert dt.date.fromisoformat(body["dateStart"]) == start
    assert dt.date.fromisoformat(body["dateEnd"]) == end
    assert body["granularity"] == granularity.lower()
    assert body["efficiency"]["metrics"] == list(dict.fromkeys(metrics))


@given(start=st.dates(), gap=st.integers(min_value=1, max_value=10_000))
def test_reversed_ranges_always_rejected(start, gap):
    try:
        end = start - dt.timedelta(days=gap)
    except OverflowError:
        return
    with pytest.raises(SEIInvalidRequestError, match="date_start"):
        ContributorReportRequest.build(collection_id="1", date_start=start, date_end=end)
