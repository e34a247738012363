"""Request validation: format, dates, required fields, types, metric names, ids."""

from __future__ import annotations

import pytest
from emu_helpers import contributor_body, post_report, team_body


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["status"] == "error"
    for word in words:
        assert word in payload["message"], payload["message"]


@pytest.mark.parametrize("query", ["", "format=json", "format=xlsx", "other=1"])
def test_only_csv_format(shared_emulator, query):
    r = post_report(shared_emulator, team_body(), query=query)
    assert_error(r, 400, "only csv is supported")


def test_format_is_case_insensitive(shared_emulator):
    assert post_report(shared_emulator, team_body(), query="format=CSV").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dateStart", "2024-1-5"),
        ("dateStart", "2024/01/01"),
        ("dateStart", "20240101"),
        ("dateEnd", "2024-02-30"),
        ("dateEnd", "2024-12-31T00:00:00"),
        ("dateEnd", 20241231),
    ],
)
def test_dates_must_be_strict_yyyy_mm_dd(shared_emulator, field, value):
    assert_error(post_report(shared_emulator, team_body(**{field: value})), 400, field)


def test_date_start_after_end_is_400(shared_emulator):
    body = team_body(dateStart="2024-06-01", dateEnd="2024-05-31")
    assert_error(post_report(shared_emulator, body), 400, "dateStart")


@pytest.mark.parametrize("field", ["dateStart", "dateEnd"])
def test_required_dates(shared_emulator, field):
    body = team_body()
    del body[field]
    assert_error(post_report(shared_emulator, body), 400, field, "required")


def test_a_team_id_is_required(shared_emulator):
    body = team_body(collectionId=None, teamRefId=None)
    assert_error(post_report(shared_emulator, body), 400, "collectionId")


def test_contributor_body_requires_its_metrics_config(shared_emulator):
    body = contributor_body(productivityContributors=None, includeRatings=True)
    assert_error(post_report(shared_emulator, body), 400, "productivityContributors")


@pytest.mark.parametrize(
    ("overrides", "word"),
    [
        ({"teamRefId": "abc"}, "teamRefId"),
        ({"teamRefId": "123"}, "teamRefId"),
        ({"teamRefId": True}, "teamRefId"),
        ({"collectionId": 1}, "collectionId"),
        ({"granularity": 7}, "granularity"),
        ({"granularity": "yearly"}, "granularity"),
        ({"productivity": {"metrics": "PR_VELOCITY_PER_DEV"}}, "metrics"),
        ({"productivity": {"metrics": [1, 2]}}, "metrics"),
        ({"productivity": ["PR_VELOCITY_PER_DEV"]}, "productivity"),
        ({"efficiency": {"metrics": [], "calculationType": "AVG"}}, "calculationType"),
        ({"efficiency": {"metrics": [], "calculationType": 50}}, "calculationType"),
    ],
)
def test_wrong_types_and_values_are_400(shared_emulator, overrides, word):
    assert_error(post_report(shared_emulator, team_body(**overrides)), 400, word)


def test_include_ratings_must_be_boolean(shared_emulator):
    body = contributor_body(includeRatings="yes")
    assert_error(post_report(shared_emulator, body), 400, "includeRatings")


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"productivity": {"metrics": ["NOT_A_METRIC"]}}, "NOT_A_METRIC"),
        ({"productivity": {"metrics": ["LEAD_TIME_FOR_CHANGES"]}}, "LEAD_TIME_FOR_CHANGES"),
        ({"efficiency": {"metrics": ["CODING_DAYS_PER_DEV"]}}, "CODING_DAYS_PER_DEV"),
        ({"productivity": {"metrics": ["PR_VELOCITY"]}}, "PR_VELOCITY"),
    ],
)
def test_unknown_or_wrong_category_metric_is_400_naming_it(shared_emulator, overrides, name):
    assert_error(post_report(shared_emulator, team_body(**overrides)), 400, name)


def test_team_metric_in_contributor_body_is_400(shared_emulator):
    body = contributor_body(productivityContributors={"metrics": ["PR_VELOCITY_PER_DEV"]})
    assert_error(post_report(shared_emulator, body), 400, "PR_VELOCITY_PER_DEV")


@pytest.mark.parametrize("team_field", ["productivity", "efficiency"])
def test_mixing_contributor_and_team_fields_is_400(shared_emulator, team_field):
    body = contributor_body(**{team_field: {"metrics": []}})
    assert_error(post_report(shared_emulator, body), 400, "cannot be combined")


@pytest.mark.parametrize(
    ("overrides", "word"),
    [
        ({"teamRefId": 424242}, "424242"),
        ({"teamRefId": None, "collectionId": "999"}, "999"),
        ({"teamRefId": None, "collectionId": "abc"}, "abc"),
        ({"teamRefId": 456, "collectionId": "31337"}, "31337"),
    ],
)
def test_unknown_team_or_collection_is_404(shared_emulator, overrides, word):
    assert_error(post_report(shared_emulator, team_body(**overrides)), 404, word)


def test_unknown_contributor_collection_is_404(shared_emulator):
    assert_error(post_report(shared_emulator, contributor_body(collectionId="77")), 404, "77")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_or_non_object_json_is_400(shared_emulator, raw):
    headers = {"x-api-key": "sei-emulator-key", "Content-Type": "application/json"}
    assert_error(post_report(shared_emulator, raw, headers=headers), 400)


def test_400s_come_before_404s(shared_emulator):
    body = team_body(teamRefId=424242, dateStart="2024-1-1")
    assert_error(post_report(shared_emulator, body), 400, "dateStart")


def test_unknown_fields_and_nulls_are_ignored(shared_emulator):
    body = team_body(extra={"x": 1}, productivity=None, efficiency=None)
    body["granularity"] = None
    assert post_report(shared_emulator, body).status_code == 200
