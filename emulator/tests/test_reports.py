"""The two CSV reports: columns, rows, headers, defaults, the page's examples."""

from __future__ import annotations

import re

import pytest
from emu_helpers import as_dicts, contributor_body, post_report, rows, team_body
from sei_emulator.calculations import PERIOD_DAYS
from sei_emulator.catalogue import (
    COLLECTION_NAME_COLUMN,
    CONTRIBUTOR_METRICS,
    EFFICIENCY_METRICS,
    TEAM_PRODUCTIVITY_METRICS,
    CalculationType,
    Granularity,
    Kind,
)

NUMBER = re.compile(r"-?\d+\.\d\d")
ALL_TEAM_COLUMNS = [COLLECTION_NAME_COLUMN] + [
    m.column() for m in TEAM_PRODUCTIVITY_METRICS + EFFICIENCY_METRICS
]


def test_page_example_1_team_productivity(shared_emulator):
    r = post_report(shared_emulator, {
        "dateStart": "2024-01-01", "dateEnd": "2024-03-31", "teamRefId": 456,
        "granularity": "weekly",
        "productivity": {"metrics": ["PR_VELOCITY_PER_DEV", "CODING_DAYS_PER_DEV",
                                     "NUMBER_OF_COMMENTS_PER_PR"]},
    })  # fmt: skip
    assert r.status_code == 200
    table = rows(r)
    assert table[0] == [COLLECTION_NAME_COLUMN, "PR Velocity per Developer",
                        "Coding Days per Developer", "Number of Comments per PR"]  # fmt: skip
    subtree = list(shared_emulator.org.subtree(456))
    assert [row[0] for row in table[1:]] == [t.name for t in subtree]
    for row in table[1:]:
        assert all(NUMBER.fullmatch(v) for v in row[1:])
        assert 0 < float(row[2]) <= 7  # coding days per week


def test_page_example_2_efficiency_median_without_granularity(shared_emulator):
    r = post_report(shared_emulator, {
        "dateStart": "2024-01-01", "dateEnd": "2024-12-31", "teamRefId": 123,
        "efficiency": {"metrics": ["LEAD_TIME_FOR_CHANGES", "DEPLOYMENT_FREQUENCY",
                                   "MEAN_TIME_TO_RESTORE"], "calculationType": "MEDIAN"},
    }, query="format=csv&projectIdentifier=myproject")  # fmt: skip
    assert r.status_code == 200
    table = rows(r)
    assert table[0] == [COLLECTION_NAME_COLUMN, "Lead Time for Changes (median)",
                        "Deployment Frequency", "Mean Time to Restore (median)"]  # fmt: skip
    assert len(table) - 1 == len(list(shared_emulator.org.subtree(123)))
    assert all(NUMBER.fullmatch(v) for v in table[1][1:])


def test_page_example_3_empty_metrics_means_all_productivity(shared_emulator):
    r = post_report(shared_emulator, {
        "dateStart": "2024-01-01", "dateEnd": "2024-12-31", "teamRefId": 789,
        "productivity": {"metrics": []},
    })  # fmt: skip
    assert r.status_code == 200
    assert rows(r)[0] == [COLLECTION_NAME_COLUMN] + [
        m.display_name for m in TEAM_PRODUCTIVITY_METRICS
    ]


def test_page_contributor_example(shared_emulator):
    r = post_report(shared_emulator, contributor_body(
        includeRatings=True,
        productivityContributors={"metrics": [m.name for m in CONTRIBUTOR_METRICS]},
    ))  # fmt: skip
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="contributor_report_1_2025-11-03_2025-11-30_weekly.csv"'
    )
    assert len(rows(r)) > 10


def test_success_headers(shared_emulator):
    r = post_report(shared_emulator, team_body(teamRefId=456, collectionId="456"))
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="team_report_456_2024-01-01_2024-12-31_weekly.csv"'
    )
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_neither_category_exports_every_team_metric(shared_emulator):
    assert rows(post_report(shared_emulator, team_body()))[0] == ALL_TEAM_COLUMNS


def test_missing_metrics_list_means_all_of_that_category(shared_emulator):
    r = post_report(shared_emulator, team_body(efficiency={"calculationType": "P90"}))
    assert rows(r)[0] == [COLLECTION_NAME_COLUMN] + [
        m.column(CalculationType.P90) for m in EFFICIENCY_METRICS
    ]


def test_columns_follow_catalogue_order_not_request_order(shared_emulator):
    body = team_body(
        efficiency={"metrics": ["OVERALL_DORA", "lead_time_for_changes"]},
        productivity={"metrics": ["avg_time_to_complete", "Time_To_First_Comment"]},
    )
    assert rows(post_report(shared_emulator, body))[0] == [
        COLLECTION_NAME_COLUMN, "Time to First Comment", "Average Time to Complete",
        "Lead Time for Changes (mean)", "Overall DORA Score",
    ]  # fmt: skip


def test_metric_names_are_case_insensitive(shared_emulator):
    upper = post_report(
        shared_emulator, team_body(efficiency={"metrics": ["LEAD_TIME_FOR_CHANGES"]})
    )
    lower = post_report(
        shared_emulator, team_body(efficiency={"metrics": ["lead_time_for_changes"]})
    )
    assert upper.content == lower.content


def test_default_calculation_type_is_mean(shared_emulator):
    implicit = post_report(shared_emulator, team_body(efficiency={"metrics": []}))
    explicit = post_report(shared_emulator, team_body(efficiency={"calculationType": "MEAN"}))
    assert implicit.content == explicit.content
    assert "Lead Time for Changes (mean)" in rows(implicit)[0]
    assert "Mean Time to Restore (mean)" in rows(implicit)[0]


@pytest.mark.parametrize("calc", ["median", "P95", "p90"])
def test_calculation_type_appears_in_aggregated_titles(shared_emulator, calc):
    r = post_report(shared_emulator, team_body(efficiency={"calculationType": calc}))
    header = rows(r)[0]
    assert f"Lead Time for Changes ({calc.lower()})" in header
    assert "Deployment Frequency" in header  # not aggregated: no suffix


def test_missing_granularity_defaults_to_weekly(shared_emulator):
    implicit = post_report(shared_emulator, team_body(granularity=None))
    assert implicit.content == post_report(shared_emulator, team_body()).content


def test_granularity_is_case_insensitive(shared_emulator):
    upper = post_report(shared_emulator, team_body(granularity="MONTHLY"))
    assert upper.content == post_report(shared_emulator, team_body(granularity="monthly")).content


def test_granularity_scales_rates_not_durations(shared_emulator):
    by = {g: as_dicts(post_report(shared_emulator, team_body(granularity=g.value)))
          for g in Granularity}  # fmt: skip
    for metric in TEAM_PRODUCTIVITY_METRICS + EFFICIENCY_METRICS:
        for i, daily in enumerate(by[Granularity.DAILY]):
            d = daily[metric.column()]
            for g in (Granularity.WEEKLY, Granularity.MONTHLY):
                v = by[g][i][metric.column()]
                if metric.kind is Kind.RATE:
                    assert float(v) == pytest.approx(float(d) * PERIOD_DAYS[g], abs=0.2)
                    assert float(v) >= float(d)
                else:
                    assert v == d, metric.name


def test_team_report_has_requested_team_and_descendants_pre_order(shared_emulator):
    org = shared_emulator.org
    for ref_id in (1, 456, 1001):
        table = rows(post_report(shared_emulator, team_body(teamRefId=ref_id, collectionId=None)))
        names = [row[0] for row in table[1:]]
        assert names == [t.name for t in org.subtree(ref_id)]
        assert names[0] == org.teams[ref_id].name


def test_team_ref_id_picks_the_subtree_over_collection_id(shared_emulator):
    both = post_report(shared_emulator, team_body(teamRefId=789, collectionId="1"))
    only = post_report(shared_emulator, team_body(teamRefId=789, collectionId=None))
    assert rows(both) == rows(only)


def test_collection_id_alone_identifies_the_team(shared_emulator):
    by_collection = post_report(shared_emulator, team_body(teamRefId=None, collectionId="456"))
    by_ref = post_report(shared_emulator, team_body(teamRefId=456, collectionId=None))
    assert rows(by_collection) == rows(by_ref)


def test_numbers_have_two_decimals(shared_emulator):
    for row in rows(post_report(shared_emulator, team_body()))[1:]:
        assert all(v == "" or NUMBER.fullmatch(v) for v in row[1:])


def test_contributor_rows_are_tree_managers_direct_reports_and_people(shared_emulator):
    org = shared_emulator.org
    table = rows(post_report(shared_emulator, contributor_body(collectionId="456")))
    expected = [org.teams[456].name]
    for team in org.subtree(456):
        manager = team.managers[0].name
        expected += [manager, f"{manager} — Direct Reports"]
        expected += [p.name for p in team.contributors]
    assert [row[0] for row in table[1:]] == expected
    assert table[0] == [COLLECTION_NAME_COLUMN] + [m.display_name for m in CONTRIBUTOR_METRICS]
    # the collection row and its manager's row cover the same people
    assert table[1][1:] == table[2][1:]


def test_contributor_ratings_columns_follow_rated_metrics(shared_emulator):
    r = post_report(shared_emulator, contributor_body(includeRatings=True))
    table = rows(r)
    assert table[0] == [
        COLLECTION_NAME_COLUMN, "PR Velocity per Developer", "Work Completed per Developer",
        "Coding Days per Developer", "Coding Days per Developer Rating",
        "Time to First Comment", "Time to First Comment Rating", "Number of Comments per PR",
        "Average Time to Complete", "Average Time to Complete Rating",
        "PRs with Missing Tickets", "PRs with Missing Tickets Rating",
    ]  # fmt: skip
    rating_columns = [i for i, title in enumerate(table[0]) if title.endswith(" Rating")]
    seen = set()
    for row in table[1:]:
        for i in rating_columns:
            assert row[i] in {"Elite", "High", "Medium", "Low", "—"}
            seen.add(row[i])
            if row[i] == "—" and table[0][i - 1] != "Coding Days per Developer":
                assert row[i - 1] in ("", "0.00")
    assert {"Elite", "Low", "—"} <= seen


def test_contributor_report_without_ratings_has_no_rating_columns(shared_emulator):
    header = rows(post_report(shared_emulator, contributor_body(includeRatings=False)))[0]
    assert not any(title.endswith("Rating") for title in header)


def test_contributor_report_is_streamed_chunked(shared_emulator):
    r = post_report(shared_emulator, contributor_body())
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.headers["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize(
    ("start", "end"), [("2020-01-01", "2022-12-31"), ("2027-01-01", "2027-03-31")]
)
def test_no_activity_is_200_with_0_bytes(shared_emulator, start, end):
    for body in (team_body(dateStart=start, dateEnd=end),
                 contributor_body(dateStart=start, dateEnd=end)):  # fmt: skip
        r = post_report(shared_emulator, body)
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["Content-Type"].startswith("text/csv")
        assert r.headers["Content-Length"] == "0"
        assert "attachment" in r.headers["Content-Disposition"]


def test_range_partly_before_activity_is_not_empty(shared_emulator):
    r = post_report(shared_emulator, team_body(dateStart="2022-12-01", dateEnd="2023-01-31"))
    assert len(rows(r)) == 13
