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
from airflow_provider_sei.models import (
    ContributorReportRequest,
    TeamReportRequest,
    parse_bool,
    parse_date,
    parse_id,
    parse_int,
    parse_list,
)

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


def test_team_ref_id_defaults_to_the_collection_id():
    # The API's tip: collectionId and teamRefId name the same team; teamRefId is a Number.
    assert TeamReportRequest.build(**TEAM).team_ref_id == 123
    assert TeamReportRequest.build(**TEAM, team_ref_id="").team_ref_id == 123
    assert TeamReportRequest.build(**TEAM, team_ref_id="None").team_ref_id == 123
    assert TeamReportRequest.build(**TEAM, team_ref_id="456").team_ref_id == 456


@pytest.mark.parametrize("name", ["abc", "Platform Team", "12a", "0x1F", "1e3", "-5", "1.0"])
def test_a_collection_id_must_be_the_numeric_id(name):
    # A team's name instead of its id would be a 404 from the server: refuse it before.
    with pytest.raises(SEIInvalidRequestError) as info:
        TeamReportRequest.build(**{**TEAM, "collection_id": name})
    assert info.value.field == "collection_id"
    assert "integer id" in str(info.value)


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
        ({"collection_id": ""}, "collection_id", "integer id"),
        ({"collection_id": "None"}, "collection_id", "integer id"),
        ({"collection_id": None}, "collection_id", "integer id"),
        ({"collection_id": "\u00b2"}, "collection_id", "integer id"),
        ({"team_ref_id": "\u0661\u0662"}, "team_ref_id", "integer"),  # Arabic-Indic digits
        ({"team_ref_id": "1" * 19}, "team_ref_id", "at most 18 digits"),
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
        ({"include_ratings": "sometimes"}, "include_ratings", "True or False"),
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


def test_invalid_input_is_a_value_error_not_an_airflow_error():
    # A @task user catches ValueError; the operators turn it into AirflowFailException.
    from airflow.providers.common.compat.sdk import AirflowException

    assert issubclass(SEIInvalidRequestError, ValueError)
    assert not issubclass(SEIInvalidRequestError, AirflowException)


def test_invalid_request_error_survives_pickling():
    import pickle

    error = SEIInvalidRequestError("granularity", "hourly", "one of daily, weekly, monthly")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error)
    assert again.field == "granularity"


# -- the parsers (one per kind of value) ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), ("6036", 6036), (" 6036 ", 6036), ("'6036'", 6036), ("9" * 18, 10**18 - 1)],
)
def test_parse_id_accepts_ascii_digits(value, expected):
    assert parse_id("collection_id", value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",  # superscript two: str.isdigit() says yes, int() says no
        "\uff11\uff12",  # full-width digits
        "9" * 5000,  # past Python's int-to-str limit
        10**5000,
        -1,
        1.0,
        True,
        None,
        "",
        "1 2",
        10**18,
    ],
    ids=lambda v: "int-5000-digits" if v == 10**5000 else repr(v)[:12],
)
def test_parse_id_rejects_anything_else_naming_the_field(value):
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_id("team_ref_id", value)
    message = str(info.value)
    assert info.value.field == "team_ref_id"
    assert message.startswith("Invalid team_ref_id: ")
    assert "a non-negative integer id of at most 18 digits" in message
    assert len(message) < 300  # a 5,000-digit value is cut, not echoed


@pytest.mark.parametrize("value", ["abc", "", "1.5", "\u00b2", "9" * 5000, None, True, [1]])
def test_parse_int_says_an_integer_within_bounds(value):
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_int("max_concurrency", value, minimum=1)
    message = str(info.value)
    assert info.value.field == "max_concurrency"
    assert message.endswith("Allowed: an integer >= 1.")
    assert "6036" not in message  # no id example in a count's message
    assert len(message) < 300


def test_parse_int_accepts_rendered_numbers_and_checks_bounds():
    assert parse_int("max_bytes", " 42 ", minimum=1) == 42
    assert parse_int("max_bytes", "1e3", minimum=1) == 1000  # an integral float
    assert parse_int("n", "+7") == 7
    with pytest.raises(SEIInvalidRequestError, match="Allowed: an integer >= 0 and <= 5"):
        parse_int("n", 6, maximum=5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("True", True),
        (" false ", False),
        ("YES", True),
        ("no", False),
        ("on", True),
        ("Off", False),
        ("1", True),
        ("0", False),
    ],
)
def test_parse_bool_from_rendered_strings(value, expected):
    assert parse_bool("overwrite", value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "None", 1, 0, None, "yes please", "tru"])
def test_parse_bool_rejects_the_rest(value):
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_bool("dedupe", value)
    assert info.value.field == "dedupe"
    assert str(info.value).endswith("Allowed: True or False.")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ([1, "2"], [1, "2"]),
        (("a", "b"), ["a", "b"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("'a', \"b\"", ["a", "b"]),
        ("['a', 'b']", ["a", "b"]),  # a list Jinja rendered to its repr
        ('["a","b"]', ["a", "b"]),
        ("[123, 1001]", [123, 1001]),
        ("(1, 2)", [1, 2]),
        ("[]", []),
        ("", []),
        ("[7]", [7]),
    ],
)
def test_parse_list_reads_every_rendered_form_one_way(value, expected):
    assert parse_list("team_ref_ids", value) == expected


@pytest.mark.parametrize("value", ["['a'", "[a, b]", {"a": 1}, 5, b"a,b"])
def test_parse_list_rejects_what_is_not_a_list(value):
    if isinstance(value, str) and not value.endswith("]"):
        # no closing bracket: read as a comma-separated list of one odd name, which the
        # field's own check then rejects; never a silent partial list
        assert parse_list("metrics", value) == [value.strip("'")]
        return
    with pytest.raises(SEIInvalidRequestError) as info:
        parse_list("metrics", value, what="metric names")
    assert info.value.field == "metrics"
    assert "a list of metric names" in str(info.value)


@pytest.mark.parametrize(
    ("value", "tz", "expected"),
    [
        ("2024-01-01T23:30:00-05:00", pendulum.UTC, "2024-01-02"),
        ("2024-01-01T23:30:00-05:00", pendulum.timezone("America/New_York"), "2024-01-01"),
        ("2024-01-02T01:00:00+02:00", pendulum.UTC, "2024-01-01"),
        ("2024-01-01T23:30:00Z", pendulum.timezone("Europe/Amsterdam"), "2024-01-02"),
        (pendulum.datetime(2024, 1, 1, 23, 30, tz="America/New_York"), pendulum.UTC, "2024-01-02"),
        ("2024-01-01T23:30:00", pendulum.UTC, "2024-01-01"),  # naive: taken as it is
        ("2024-01-01", pendulum.timezone("Asia/Tokyo"), "2024-01-01"),  # a date has no zone
    ],
)
def test_parse_date_takes_an_offset_datetime_in_the_dag_timezone(value, tz, expected):
    assert parse_date("date_start", value, tz).isoformat() == expected


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
