"""Invariants that tie the CSV to the synthetic events it is computed from."""

from __future__ import annotations

import statistics
from datetime import date

import pytest
from emu_helpers import as_dicts, contributor_body, post_report, team_body
from sei_emulator import SEIEmulator
from sei_emulator.calculations import percentile
from sei_emulator.catalogue import CONTRIBUTOR_METRICS, Kind

RANGE = {"dateStart": "2024-03-01", "dateEnd": "2024-03-10"}  # 10 days


def raw_deployments(org, ref_id):
    lo, hi = date(2024, 3, 1).toordinal(), date(2024, 3, 11).toordinal()
    months = org.activity(ref_id, date(2024, 3, 1), date(2024, 3, 10))
    return sum(lo <= t < hi for m in months for t in m.deploy_time)


def test_children_roll_up_into_parents(shared_emulator):
    org = shared_emulator.org
    body = team_body(granularity="daily", efficiency={"metrics": ["DEPLOYMENT_FREQUENCY"]},
                     **RANGE)  # fmt: skip
    table = as_dicts(post_report(shared_emulator, body))
    count = {
        team.ref_id: round(float(row["Deployment Frequency"]) * 10)
        for team, row in zip(org.subtree(1), table, strict=True)
    }
    assert count[1] > 0
    for team in org.teams.values():
        own = raw_deployments(org, team.ref_id)
        assert count[team.ref_id] == own + sum(count[c] for c in team.children)
        assert count[team.ref_id] == sum(raw_deployments(org, t.ref_id)
                                         for t in org.subtree(team.ref_id))  # fmt: skip


@pytest.mark.parametrize("metric", ["Lead Time for Changes", "Mean Time to Restore"])
def test_high_percentiles_are_at_least_the_median(shared_emulator, metric):
    by = {
        calc: as_dicts(
            post_report(shared_emulator, team_body(efficiency={"calculationType": calc}))
        )
        for calc in ("MEDIAN", "P90", "P95", "MEAN")
    }
    for i in range(len(by["MEDIAN"])):
        if by["MEDIAN"][i][f"{metric} (median)"] == "":  # a team without deployments
            assert by["P95"][i][f"{metric} (p95)"] == ""
            continue
        median = float(by["MEDIAN"][i][f"{metric} (median)"])
        p90 = float(by["P90"][i][f"{metric} (p90)"])
        p95 = float(by["P95"][i][f"{metric} (p95)"])
        assert p95 >= p90 >= median
    # skewed durations: the mean sits above the median at the root
    assert float(by["MEAN"][0][f"{metric} (mean)"]) > float(by["MEDIAN"][0][f"{metric} (median)"])


def test_median_is_computed_from_the_events(shared_emulator):
    org = shared_emulator.org
    leaf = next(t for t in org.teams.values() if not t.children)
    efficiency = {"metrics": ["LEAD_TIME_FOR_CHANGES"], "calculationType": "MEDIAN"}
    body = team_body(teamRefId=leaf.ref_id, collectionId=None, efficiency=efficiency)
    value = float(as_dicts(post_report(shared_emulator, body))[0]["Lead Time for Changes (median)"])
    lo, hi = date(2024, 1, 1).toordinal(), date(2025, 1, 1).toordinal()
    leads = [
        d.time - c
        for m in org.activity(leaf.ref_id, date(2024, 1, 1), date(2024, 12, 31))
        for d in m.deployments
        if lo <= d.time < hi
        for c in d.commit_times
    ]
    assert value == pytest.approx(statistics.median(leads), abs=0.005)


def test_percentile_is_linear_interpolation():
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.9) == pytest.approx(4.6)
    assert percentile([7.0], 0.95) == 7.0


def test_weekly_rates_are_seven_times_daily(shared_emulator):
    daily = as_dicts(post_report(shared_emulator, team_body(granularity="daily")))
    weekly = as_dicts(post_report(shared_emulator, team_body(granularity="weekly")))
    for d, w in zip(daily, weekly, strict=True):
        for column in ("PR Velocity per Developer", "Deployment Frequency",
                       "Coding Days per Developer", "Work Completed per Developer"):  # fmt: skip
            assert float(w[column]) == pytest.approx(7 * float(d[column]), abs=0.045)


def test_contributor_rates_scale_with_granularity(shared_emulator):
    daily = as_dicts(post_report(shared_emulator, contributor_body(granularity="daily")))
    weekly = as_dicts(post_report(shared_emulator, contributor_body(granularity="weekly")))
    for metric in CONTRIBUTOR_METRICS:
        for d, w in zip(daily, weekly, strict=True):
            if metric.kind is Kind.RATE:
                assert float(w[metric.column()]) == pytest.approx(
                    7 * float(d[metric.column()]), abs=0.045
                )
            else:
                assert w[metric.column()] == d[metric.column()]


def test_coding_days_per_dev_never_exceed_the_period(shared_emulator):
    for row in as_dicts(post_report(shared_emulator, contributor_body(granularity="weekly")))[1:]:
        assert 0 <= float(row["Coding Days per Developer"]) <= 7


def test_same_seed_same_bytes_different_seed_different_bytes():
    bodies = [team_body(), contributor_body(includeRatings=True)]
    seeds = (SEIEmulator(port=0, seed=7), SEIEmulator(port=0, seed=7), SEIEmulator(port=0, seed=8))
    with seeds[0] as a, seeds[1] as b, seeds[2] as c:
        for body in bodies:
            ra, rb, rc = (post_report(e, body).content for e in (a, b, c))
            assert ra == rb
            assert ra != rc
