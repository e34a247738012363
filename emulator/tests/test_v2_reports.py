"""The V2 CSVs: documented headers, hierarchy and period columns, values from the org."""

from __future__ import annotations

from datetime import date

import pytest
from emu_helpers import as_dicts, post_report, team_body
from sei_emulator import SEIEmulator
from v2_helpers import export_body, export_csv, table

BA_SAMPLE = (
    "Granularity,Team,Team_Hierarchy,Start_Date,End_Date,KTLO_story_points,KTLO_tickets,"
    "New_Capability_story_points,Security_and_Compliance_story_points,"
    "Uncategorized_story_points"
)
PREFIX = "Granularity,Team,Team_Hierarchy,Start_Date,End_Date,"
HEADERS = {
    "efficiency": PREFIX + "LTTC_Planning_Mean_Days,LTTC_Coding_Mean_Days,LTTC_Review_Mean_Days,"
    "LTTC_Build_Mean_Days,LTTC_Deploy_Mean_Days,LTTC_Mean_Days,Work_Items_Total,"
    "Work_Items_PR_Associations,Work_Items_PR_Associated_Percent,DF_Deployment_Count,"
    "DF_Deployments_Per_Day,CFR_Total_Success,CFR_Total_Failures,CFR_Percent,MTTR_Mean_Days,"
    "DORA_Overall_Rating",
    "productivity": PREFIX + "Coding_Days,PR_Cycle_Time_Days_Avg,Avg_Time_To_Complete,"
    "PR_Velocity,PR_Merged,PR_Merged_Small,PR_Merged_Medium,PR_Merged_Large,Work_Completed,"
    "Work_Features_Completed,Work_Bugs_Completed,Work_Other_Completed,Rework_Percent,"
    "Rework_Percent_Recent,Rework_Percent_Legacy,LOC_Refactored,LOC_Refactored_Recent,"
    "LOC_Refactored_Legacy,PR_Missing_Tickets,LOC_Total,Review_Comments_Per_PR_Avg,"
    "Review_Time_To_First_Comment_Hrs_Avg",
    "sprint": PREFIX + "Sprint_Commit,Sprint_Creep,Sprint_Size,Scope_Creep_Percent,"
    "Total_Work_Delivered,Delivered_Commit,Missed_Commit,Delivered_Creep,Missed_Creep,"
    "Total_Delivered_Work_Vs_Committed_Work,Sprint_Velocity,Committed_Work_Delivered_Percent,"
    "Creep_Work_Delivered_Percent,Total_Work_Delivered_Percent,Churn_Rate,"
    "Predictability_Delivery_Consistency,Predictability_Reliability_Of_Commitment",
    "ba": BA_SAMPLE,
    "ticket-data": PREFIX + "Issue_Count,To_Do_Mean_Days,In_Progress_Mean_Days,"
    "In_Review_Mean_Days,QA_Mean_Days,Done_Mean_Days",
}


def header(data: bytes) -> str:
    return data.split(b"\n", 1)[0].decode()


@pytest.mark.parametrize("export_type", list(HEADERS))
def test_default_headers(shared_emulator, export_type):
    assert header(export_csv(shared_emulator, export_type)) == HEADERS[export_type]


def test_ba_matches_the_documented_sample(shared_emulator):
    rows = table(export_csv(shared_emulator, "ba"))
    assert [r["Granularity"] for r in rows] == ["Jan 2024", "Feb 2024", "Mar 2024"]
    assert rows[1]["Start_Date"] == "2024-02-01"
    assert rows[1]["End_Date"] == "2024-02-29"
    team = shared_emulator.org.teams[456]
    assert {r["Team"] for r in rows} == {team.name}
    parent = shared_emulator.org.teams[team.parent_ref_id]
    assert rows[0]["Team_Hierarchy"].endswith(f"{parent.name}/{team.name}")
    assert rows[0]["Team_Hierarchy"].startswith(shared_emulator.org.root.name + "/")
    for row in rows:
        assert all(row[c].isdigit() for c in BA_SAMPLE.split(",")[5:])


def test_ba_groups_filter_columns(shared_emulator):
    data = export_csv(shared_emulator, "ba", export_body("ba", metricGroups=["UNCATEGORIZED"]))
    assert header(data) == PREFIX + "Uncategorized_story_points"


def test_org_tree_scope_has_every_team_per_period(shared_emulator):
    org = shared_emulator.org
    body = export_body(
        "efficiency",
        scope={"orgTreeName": org.root.name},
        options_granularity="QUARTERLY",
        dateRange={"start": "2024-02-10", "end": "2024-12-31"},
    )
    rows = table(export_csv(shared_emulator, "efficiency", body))
    teams = [t.name for t in org.subtree(1)]
    assert [r["Team"] for r in rows] == teams * 4
    assert [(r["Granularity"], r["Start_Date"], r["End_Date"]) for r in rows[:: len(teams)]] == [
        ("Q1 2024", "2024-02-10", "2024-03-31"),
        ("Q2 2024", "2024-04-01", "2024-06-30"),
        ("Q3 2024", "2024-07-01", "2024-09-30"),
        ("Q4 2024", "2024-10-01", "2024-12-31"),
    ]
    for row, team in zip(rows, org.subtree(1), strict=False):
        path = [team.name]
        while team.parent_ref_id is not None:
            team = org.teams[team.parent_ref_id]
            path.insert(0, team.name)
        assert row["Team_Hierarchy"] == "/".join(path)


def test_weekly_periods_are_iso_weeks(shared_emulator):
    body = export_body("ticket-data", dateRange={"start": "2024-01-03", "end": "2024-01-20"})
    rows = table(export_csv(shared_emulator, "ticket-data", body))
    assert [(r["Granularity"], r["Start_Date"], r["End_Date"]) for r in rows] == [
        ("2024-W01", "2024-01-03", "2024-01-07"),
        ("2024-W02", "2024-01-08", "2024-01-14"),
        ("2024-W03", "2024-01-15", "2024-01-20"),
    ]


def test_efficiency_agrees_with_the_legacy_report(shared_emulator):
    """One period: LTTC is the legacy lead time; deployments the legacy frequency x days."""
    dates = {"start": "2024-03-01", "end": "2024-03-31"}
    body = export_body("efficiency", dateRange=dates, options_aggregation="median")
    v2 = table(export_csv(shared_emulator, "efficiency", body))[0]
    legacy = as_dicts(
        post_report(
            shared_emulator,
            team_body(
                teamRefId=456,
                collectionId="456",
                dateStart=dates["start"],
                dateEnd=dates["end"],
                granularity="daily",
                efficiency={"calculationType": "MEDIAN"},
            ),
        )
    )[0]
    assert v2["LTTC_Median_Days"] == legacy["Lead Time for Changes (median)"]
    assert v2["MTTR_Median_Days"] == legacy["Mean Time to Restore (median)"]
    assert int(v2["DF_Deployment_Count"]) == round(float(legacy["Deployment Frequency"]) * 31)
    assert v2["CFR_Percent"] == legacy["Change Failure Rate"]
    success, failures = int(v2["CFR_Total_Success"]), int(v2["CFR_Total_Failures"])
    assert success + failures == int(v2["DF_Deployment_Count"])


def test_lttc_stages_add_up_to_lttc(shared_emulator):
    for row in table(export_csv(shared_emulator, "efficiency")):
        if not row["LTTC_Mean_Days"]:
            continue
        stages = sum(
            float(row[f"LTTC_{s}_Mean_Days"])
            for s in ("Planning", "Coding", "Review", "Build", "Deploy")
        )
        assert abs(stages - float(row["LTTC_Mean_Days"])) <= 0.03


def test_developers_add_up_to_their_team(shared_emulator):
    org = shared_emulator.org
    leaf = next(t for t in org.teams.values() if not t.children)
    scope = {"teamId": str(leaf.ref_id)}
    devs = table(
        export_csv(
            shared_emulator,
            "productivity",
            export_body("productivity", scope=scope, options_metricLevel="developer"),
        )
    )
    teams = table(
        export_csv(shared_emulator, "productivity", export_body("productivity", scope=scope))
    )
    names = [p.name for p in leaf.contributors]
    assert [r["Developer"] for r in devs] == names * 3
    assert list(devs[0])[:6] == [
        "Granularity",
        "Team",
        "Team_Hierarchy",
        "Developer",
        "Start_Date",
        "End_Date",
    ]
    assert "LOC_Added" in devs[0]
    assert "LOC_Total" not in devs[0]
    for month in range(3):
        month_devs = devs[month * len(names) : (month + 1) * len(names)]
        for column in ("PR_Merged", "Work_Completed", "PR_Missing_Tickets", "LOC_Refactored"):
            assert sum(int(r[column]) for r in month_devs) == int(teams[month][column])
        lines = sum(int(r["LOC_Added"]) + int(r["LOC_Removed"]) for r in month_devs)
        assert lines == int(teams[month]["LOC_Total"])
        sizes = sum(int(teams[month][f"PR_Merged_{s}"]) for s in ("Small", "Medium", "Large"))
        assert sizes == int(teams[month]["PR_Merged"])


def test_parents_roll_up_their_children(shared_emulator):
    org = shared_emulator.org
    body = export_body("ba", scope={"orgTreeName": org.root.name})
    rows = table(export_csv(shared_emulator, "ba", body))[: len(org.teams)]  # January
    by_team = {r["Team"]: int(r["KTLO_tickets"]) for r in rows}
    for team in org.teams.values():
        children = sum(by_team[org.teams[c].name] for c in team.children)
        assert by_team[team.name] >= children


def test_sprint_rows_and_identities(shared_emulator):
    body = export_body("sprint", options_granularity="SPRINT", options_metricLevel="sprint")
    data = export_csv(shared_emulator, "sprint", body)
    assert header(data).startswith("Granularity,Team,Team_Hierarchy,Sprint_Name,Start_Date,")
    assert "Sprint_Velocity" not in header(data)
    assert "Tickets_Removed_Mid_Sprint" in header(data)
    rows = table(data)
    assert [r["Sprint_Name"] for r in rows] == [f"Sprint {n}" for n in range(27, 33)]
    for row in rows:
        days = date.fromisoformat(row["End_Date"]) - date.fromisoformat(row["Start_Date"])
        assert days.days == 13
        commit, creep = int(row["Sprint_Commit"]), int(row["Sprint_Creep"])
        assert int(row["Sprint_Size"]) == commit + creep
        assert commit == int(row["Delivered_Commit"]) + int(row["Missed_Commit"])
        assert int(row["Total_Work_Delivered"]) == (
            int(row["Delivered_Commit"]) + int(row["Delivered_Creep"])
        )
    tickets = table(
        export_csv(
            shared_emulator,
            "sprint",
            export_body(
                "sprint",
                options_granularity="SPRINT",
                options_metricLevel="sprint",
                options_computationMode="TICKETS",
            ),
        )
    )
    for points, count in zip(rows, tickets, strict=True):
        assert (
            int(count["Sprint_Size"]) <= int(points["Sprint_Size"]) <= 8 * int(count["Sprint_Size"])
        )
        assert count["Tickets_Removed_Mid_Sprint"] == points["Tickets_Removed_Mid_Sprint"]


def test_time_in_status_statuses_and_terminal_date(shared_emulator):
    body = export_body(
        "ticket-data", issueStatuses=["qa", "In Progress", "Blocked"], options_aggregation="p90"
    )
    rows = table(export_csv(shared_emulator, "ticket-data", body))
    assert list(rows[0])[5:] == [
        "Issue_Count",
        "QA_P90_Days",
        "In_Progress_P90_Days",
        "Blocked_P90_Days",
    ]
    assert {r["Blocked_P90_Days"] for r in rows} == {""}  # outside the workflow: no data
    resolved = sum(int(r["Issue_Count"]) for r in rows)
    released = sum(
        int(r["Issue_Count"])
        for r in table(
            export_csv(
                shared_emulator,
                "ticket-data",
                export_body("ticket-data", options_terminalDateColumn="version_release_date"),
            )
        )
    )
    assert resolved > 0
    assert released > 0
    assert resolved != released


def test_same_seed_same_bytes_and_another_seed_differs():
    out = []
    for seed in (42, 42, 7):
        with SEIEmulator(port=0, seed=seed) as emu:
            out.append([export_csv(emu, t) for t in HEADERS])
    assert out[0] == out[1]
    assert out[0] != out[2]


def test_metric_selection_is_case_insensitive_and_in_catalogue_order(shared_emulator):
    body = export_body(
        "efficiency", metrics=["mttr", "Lttc"], metricGroups=["CFR"], options_aggregation="P95"
    )
    assert header(export_csv(shared_emulator, "efficiency", body)) == (
        PREFIX + "LTTC_P95_Days,CFR_Total_Success,CFR_Total_Failures,CFR_Percent,MTTR_P95_Days"
    )


def test_no_activity_gives_empty_cells_not_errors(shared_emulator):
    body = export_body("efficiency", dateRange={"start": "2020-01-01", "end": "2020-01-31"})
    row = table(export_csv(shared_emulator, "efficiency", body))[0]
    assert row["LTTC_Mean_Days"] == ""
    assert row["DF_Deployment_Count"] == "0"
