"""The V2 export job's request model and job model: every type, every documented spelling,
every refusal naming the field, the value and what the type allows."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.metrics import EXPORT_TYPES, ExportType
from airflow_provider_sei.models import ExportJob, ExportJobRequest, parse_export_type

IDS = {"org_identifier": "org-1", "project_identifier": "proj-1"}
SEGMENTS = {
    ExportType.EFFICIENCY: "efficiency",
    ExportType.PRODUCTIVITY: "productivity",
    ExportType.SPRINT: "sprint",
    ExportType.BUSINESS_ALIGNMENT: "ba",
    ExportType.TIME_IN_STATUS: "ticket-data",
}
#: Each page's granularities, as the page spells them.
GRANULARITIES = {
    ExportType.EFFICIENCY: ("WEEKLY", "MONTHLY", "QUARTERLY"),
    ExportType.PRODUCTIVITY: ("weekly", "monthly", "quarterly"),
    ExportType.SPRINT: ("WEEKLY", "MONTHLY", "QUARTERLY", "SPRINT"),
    ExportType.BUSINESS_ALIGNMENT: ("WEEKLY", "MONTHLY", "QUARTERLY"),
    ExportType.TIME_IN_STATUS: ("daily", "weekly", "monthly", "quarterly"),
}


def build(export_type: Any = "efficiency", **kwargs: Any) -> ExportJobRequest:
    kwargs.setdefault("date_start", "2024-01-01")
    kwargs.setdefault("date_end", "2024-03-31")
    kwargs.setdefault("granularity", "monthly")
    if "team_id" not in kwargs and "org_tree_name" not in kwargs:
        kwargs["team_id"] = "123"
    return ExportJobRequest.build(export_type=export_type, **kwargs)


def body(request: ExportJobRequest) -> dict[str, Any]:
    return request.to_json(**IDS)


def refused(field: str, **kwargs: Any) -> SEIInvalidRequestError:
    with pytest.raises(SEIInvalidRequestError) as info:
        build(**kwargs)
    assert info.value.field == field, str(info.value)
    assert f"Invalid {field}" in str(info.value)
    return info.value


# -- export types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("efficiency", ExportType.EFFICIENCY),
        ("EFFICIENCY", ExportType.EFFICIENCY),
        ("productivity", ExportType.PRODUCTIVITY),
        ("sprint", ExportType.SPRINT),
        ("business_alignment", ExportType.BUSINESS_ALIGNMENT),
        ("business-alignment", ExportType.BUSINESS_ALIGNMENT),
        ("ba", ExportType.BUSINESS_ALIGNMENT),
        ("BA", ExportType.BUSINESS_ALIGNMENT),
        ("time_in_status", ExportType.TIME_IN_STATUS),
        ("ticket-data", ExportType.TIME_IN_STATUS),
        ("ticket_data", ExportType.TIME_IN_STATUS),
        (" Ticket-Data ", ExportType.TIME_IN_STATUS),
        (ExportType.SPRINT, ExportType.SPRINT),
    ],
)
def test_export_type_by_name_or_segment(name, kind):
    assert parse_export_type(name) is kind
    request = build(name, granularity="weekly")
    assert request.export_type is kind
    assert request.segment == SEGMENTS[kind]


@pytest.mark.parametrize("value", ["sprints", "dora", "", None, 3, ["ba"], "teams"])
def test_unknown_export_type_names_every_accepted_name(value):
    error = refused("export_type", export_type=value)
    assert error.value == value
    for name in ("efficiency", "productivity", "sprint", "business_alignment"):
        assert name in error.allowed
    assert "time_in_status" in error.allowed
    assert "ba" in error.allowed
    assert "ticket-data" in error.allowed


# -- granularity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "spelling"),
    [(kind, spelling) for kind, spellings in GRANULARITIES.items() for spelling in spellings],
)
def test_granularity_in_any_case_is_sent_as_the_type_spells_it(kind, spelling):
    for given_value in (spelling.lower(), spelling.upper(), spelling.title(), f" {spelling} "):
        request = build(kind, granularity=given_value)
        assert body(request)["options"]["granularity"] == spelling


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (ExportType.EFFICIENCY, "daily"),
        (ExportType.EFFICIENCY, "sprint"),
        (ExportType.PRODUCTIVITY, "SPRINT"),
        (ExportType.PRODUCTIVITY, "daily"),
        (ExportType.BUSINESS_ALIGNMENT, "sprint"),
        (ExportType.TIME_IN_STATUS, "sprint"),
        (ExportType.SPRINT, "yearly"),
        (ExportType.SPRINT, ""),
        (ExportType.SPRINT, None),
    ],
)
def test_granularity_a_type_does_not_document_is_refused(kind, value):
    error = refused("granularity", export_type=kind, granularity=value)
    assert error.value == value
    assert error.allowed == "one of " + ", ".join(GRANULARITIES[kind])


@given(
    kind=st.sampled_from(list(ExportType)),
    text=st.text(min_size=1, max_size=12),
)
def test_granularity_is_accepted_exactly_when_the_page_lists_it(kind, text):
    allowed = {g.lower(): g for g in GRANULARITIES[kind]}
    if text.strip().lower() in allowed:
        request = build(kind, granularity=text)
        assert request.granularity == allowed[text.strip().lower()]
    else:
        with pytest.raises(SEIInvalidRequestError) as info:
            build(kind, granularity=text)
        assert info.value.field == "granularity"


# -- metric groups and metrics --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "group"),
    [(kind, group) for kind, spec in EXPORT_TYPES.items() for group in spec.metric_groups],
)
def test_every_documented_group_in_any_case(kind, group):
    request = build(kind, metric_groups=[group.upper()])
    assert body(request)["metricGroups"] == [group]
    assert build(kind, metric_groups=group.lower()).metric_groups == (group,)


def test_the_df_alias_names_deployment_frequency():
    request = build("efficiency", metric_groups=["lttc", "DF", "deployment_frequency"])
    assert request.metric_groups == ("lttc", "deployment_frequency")


def test_groups_and_metrics_from_rendered_templates():
    request = build("efficiency", metric_groups="['lttc', 'cfr']", metrics="LTTC, cfr")
    assert body(request)["metricGroups"] == ["lttc", "cfr"]
    assert body(request)["metrics"] == ["LTTC", "CFR"]


@pytest.mark.parametrize("empty", [None, [], "", "[]"])
def test_no_groups_or_metrics_means_all_and_sends_none(empty):
    sent = body(build("productivity", metric_groups=empty, metrics=empty))
    assert "metricGroups" not in sent
    assert "metrics" not in sent


@pytest.mark.parametrize(
    ("kind", "group"),
    [
        (ExportType.EFFICIENCY, "velocity"),  # a productivity group
        (ExportType.PRODUCTIVITY, "lttc"),  # an efficiency group
        (ExportType.SPRINT, "quality"),
        (ExportType.BUSINESS_ALIGNMENT, "work"),
        (ExportType.EFFICIENCY, 7),
    ],
)
def test_a_group_of_another_type_is_refused_with_the_type_s_groups(kind, group):
    error = refused("metric_groups", export_type=kind, metric_groups=[group])
    assert error.value == group
    for known in EXPORT_TYPES[kind].metric_groups:
        assert known in error.allowed


def test_time_in_status_has_no_groups_and_no_metrics():
    error = refused("metric_groups", export_type="ticket-data", metric_groups=["lttc"])
    assert "no metric groups" in error.allowed
    error = refused("metrics", export_type="ticket-data", metrics=["LTTC"])
    assert "no metric names" in error.allowed


@pytest.mark.parametrize(
    ("kind", "metric"),
    [(kind, m) for kind, spec in EXPORT_TYPES.items() for m in spec.metrics()],
)
def test_every_documented_metric_in_any_case(kind, metric):
    assert body(build(kind, metrics=[metric.lower()]))["metrics"] == [metric]


@pytest.mark.parametrize(
    ("kind", "metric"),
    [
        (ExportType.EFFICIENCY, "PR_VELOCITY"),
        (ExportType.PRODUCTIVITY, "LTTC"),
        (ExportType.SPRINT, "CODING_DAYS"),
        (ExportType.PRODUCTIVITY, "LEAD_TIME_FOR_CHANGES"),  # a legacy endpoint's name
        (ExportType.BUSINESS_ALIGNMENT, "KTLO"),
    ],
)
def test_a_metric_of_another_type_is_refused_with_the_type_s_metrics(kind, metric):
    error = refused("metrics", export_type=kind, metrics=[metric])
    assert error.value == metric
    for known in EXPORT_TYPES[kind].metrics():
        assert known in error.allowed


@pytest.mark.parametrize(
    ("kind", "level", "metric"),
    [
        ("productivity", "developer", "PR_VELOCITY"),
        ("productivity", "developer", "LOC_TOTAL"),
        ("productivity", "team", "LOC_ADDED"),
        ("sprint", "sprint", "SPRINT_VELOCITY"),
        ("sprint", "team", "TICKETS_REMOVED_MID_SPRINT"),
    ],
)
def test_a_metric_the_pages_give_only_at_another_level_is_refused(kind, level, metric):
    error = refused("metrics", export_type=kind, metric_level=level, metrics=[metric])
    assert f"metric_level {level!r}" in error.allowed
    assert metric not in error.allowed
    # Without an explicit level the server's default decides: sent as asked.
    assert build(kind, metrics=[metric]).metrics == (metric,)


# -- aggregation, metric level, issue statuses ----------------------------------------------


@pytest.mark.parametrize("kind", list(ExportType))
@pytest.mark.parametrize("value", ["mean", "MEDIAN", "P90", " p95 "])
def test_aggregation_for_every_type(kind, value):
    assert body(build(kind, aggregation=value))["options"]["aggregation"] == value.strip().lower()


@pytest.mark.parametrize("value", ["p99", "avg", 90])
def test_unknown_aggregation_is_refused(value):
    error = refused("aggregation", aggregation=value)
    assert error.allowed == "one of mean, median, p90, p95"


@pytest.mark.parametrize(
    ("kind", "level", "sent"),
    [
        ("productivity", "DEVELOPER", "developer"),
        ("productivity", "team", "team"),
        ("sprint", "Sprint", "sprint"),
        ("sprint", "team", "team"),
    ],
)
def test_metric_level_per_type(kind, level, sent):
    assert body(build(kind, metric_level=level))["options"]["metricLevel"] == sent


@pytest.mark.parametrize(
    ("kind", "level", "allowed"),
    [
        ("productivity", "sprint", "one of developer, team"),
        ("sprint", "developer", "one of team, sprint"),
        ("efficiency", "team", "nothing: efficiency exports take no metric_level"),
        ("ba", "team", "nothing: business_alignment exports take no metric_level"),
    ],
)
def test_metric_level_a_type_does_not_take_is_refused(kind, level, allowed):
    assert refused("metric_level", export_type=kind, metric_level=level).allowed == allowed


def test_time_in_status_levels_go_through_options():
    error = refused("metric_level", export_type="time_in_status", metric_level="team")
    assert "aggregationLevel" in error.allowed
    sent = body(build("time_in_status", options={"aggregationlevel": "SPRINT"}))
    assert sent["options"]["aggregationLevel"] == "sprint"


def test_issue_statuses_for_time_in_status():
    request = build("time_in_status", issue_statuses="In Progress, In Review, QA")
    assert body(request)["issueStatuses"] == ["In Progress", "In Review", "QA"]
    rendered = build("ticket-data", issue_statuses="['In Progress', 'Done']")
    assert rendered.issue_statuses == ("In Progress", "Done")


@pytest.mark.parametrize("kind", ["efficiency", "productivity", "sprint", "ba"])
def test_issue_statuses_are_refused_for_other_types(kind):
    error = refused("issue_statuses", export_type=kind, issue_statuses=["QA"])
    assert "only time_in_status" in error.allowed


@pytest.mark.parametrize("statuses", [["QA", ""], ["QA", 3], [None]])
def test_empty_or_non_text_statuses_are_refused(statuses):
    refused("issue_statuses", export_type="time_in_status", issue_statuses=statuses)


# -- options --------------------------------------------------------------------------------


def test_options_are_merged_into_the_body_options():
    request = build(
        "sprint",
        granularity="sprint",
        aggregation="median",
        options={"computationmode": "tickets", "futureOption": {"a": [1, 2]}},
    )
    assert body(request)["options"] == {
        "granularity": "SPRINT",
        "format": "csv",
        "aggregation": "median",
        "computationMode": "TICKETS",
        "futureOption": {"a": [1, 2]},
    }


def test_options_rendered_to_a_string_are_parsed():
    request = build("ticket-data", options="{'terminalDateColumn': 'VERSION_RELEASE_DATE'}")
    assert body(request)["options"]["terminalDateColumn"] == "version_release_date"


@pytest.mark.parametrize(
    ("kind", "options", "field"),
    [
        ("sprint", {"computationMode": "HOURS"}, "options.computationMode"),
        ("ticket-data", {"terminalDateColumn": "closed_at"}, "options.terminalDateColumn"),
        ("ticket-data", {"aggregationLevel": "developer"}, "options.aggregationLevel"),
        ("productivity", {"aggregationLevel": "sprint"}, "options.aggregationLevel"),
        ("efficiency", {"when": datetime(2024, 1, 1)}, "options.when"),
        ("efficiency", {"ratio": float("nan")}, "options.ratio"),
        ("efficiency", ["computationMode"], "options"),
        ("efficiency", "computationMode=TICKETS", "options"),
        ("efficiency", {1: "x"}, "options"),
    ],
)
def test_bad_options_are_refused(kind, options, field):
    refused(field, export_type=kind, options=options)


@pytest.mark.parametrize(
    "key", ["granularity", "Aggregation", "metricLevel", "compression", "format"]
)
def test_options_cannot_override_what_parameters_validated(key):
    error = refused("options", export_type="productivity", options={key: "anything"})
    assert error.value == key
    assert "granularity" in error.allowed


# -- scope, dates, compression --------------------------------------------------------------


def test_scope_takes_a_team_an_org_tree_or_both():
    assert body(build(team_id=456))["scope"] == {"teamId": "456", **_scope_ids()}
    tree = body(build(org_tree_name="Stark Engineering"))["scope"]
    assert tree == {"orgTreeName": "Stark Engineering", **_scope_ids()}
    both = body(build(team_id=" 456 ", org_tree_name="Eng"))["scope"]
    assert both["teamId"] == "456"
    assert both["orgTreeName"] == "Eng"


def _scope_ids() -> dict[str, str]:
    return {"orgIdentifier": "org-1", "projectIdentifier": "proj-1"}


@pytest.mark.parametrize(
    ("team", "tree"), [(None, None), ("", " "), ("None", None), (None, "null")]
)
def test_scope_needs_a_team_or_an_org_tree(team, tree):
    error = refused("team_id/org_tree_name", team_id=team, org_tree_name=tree)
    assert "team_id, an org_tree_name, or both" in error.allowed


@pytest.mark.parametrize("team", [["123"], 1.5, True, {"id": 1}])
def test_a_team_id_that_is_not_text_is_refused(team):
    assert refused("team_id", team_id=team).allowed == "a string"


def test_dates_are_sent_as_yyyy_mm_dd():
    request = build(date_start=date(2024, 2, 1), date_end=datetime(2024, 2, 29, 23, 0))
    assert body(request)["dateRange"] == {"start": "2024-02-01", "end": "2024-02-29"}


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("date_start", {"date_start": "2024-13-01"}),
        ("date_end", {"date_end": "yesterday"}),
        ("date_start", {"date_start": "2024-04-01", "date_end": "2024-03-31"}),
    ],
)
def test_bad_dates_are_refused(field, kwargs):
    refused(field, **kwargs)


def test_compression_asks_for_a_gzip_download():
    assert body(build(compression="GZIP"))["options"]["compression"] == "gzip"
    assert "compression" not in body(build(compression=None))["options"]
    assert refused("compression", compression="zip").allowed == "one of gzip"


def test_the_body_is_json_with_the_documented_shape():
    sent = body(build("productivity", metric_level="developer", metric_groups=["velocity"]))
    assert json.loads(json.dumps(sent)) == sent
    assert set(sent) == {"scope", "dateRange", "options", "metricGroups"}
    assert sent["options"]["format"] == "csv"


# -- the job --------------------------------------------------------------------------------


def test_job_from_a_downloadurl_status():
    job = ExportJob.from_json(
        {
            "exportId": "exp_2B3C4D5E",
            "status": "COMPLETED",
            "createdAt": "2025-05-13T10:00:00Z",
            "completedAt": "2025-05-13T10:05:00Z",
            "downloadUrl": "/v2/insights/efficiency/exports/exp_2B3C4D5E/download",
        },
        ExportType.EFFICIENCY,
    )
    assert job.finished
    assert job.status == "COMPLETED"
    assert not job.reused
    assert job.download_url == "/v2/insights/efficiency/exports/exp_2B3C4D5E/download"
    assert job.completed_at == "2025-05-13T10:05:00Z"


def test_job_from_a_sized_download_object_in_lower_case():
    job = ExportJob.from_json(
        {
            "exportId": "exp_7a8b9c0d",
            "status": " completed ",
            "download": {
                "url": "/v2/insights/sprints/exports/exp_7a8b9c0d/download",
                "filename": "sprint-2024.csv.gz",
                "contentType": "application/gzip",
                "sizeBytes": 245672,
                "compression": "gzip",
            },
        },
        ExportType.SPRINT,
    )
    assert job.status == "COMPLETED"
    assert job.finished
    assert (job.filename, job.content_type, job.size_bytes, job.compression) == (
        "sprint-2024.csv.gz",
        "application/gzip",
        245672,
        "gzip",
    )
    assert job.download_url.startswith("/v2/insights/sprints/")


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ("queued", False),
        ("PROCESSING", False),
        ("Failed", True),
        ("cancelled", True),
        ("RUNNING", False),  # undocumented: keep polling
        (None, False),
    ],
)
def test_statuses_are_read_in_any_case(status, finished):
    job = ExportJob.from_json({"exportId": "exp_1", "status": status}, ExportType.PRODUCTIVITY)
    assert job.finished is finished
    assert job.status == (status.upper() if status else None)


def test_a_create_answer_without_status_is_a_job_to_poll():
    job = ExportJob.from_json(
        {"exportId": "exp_1", "createdAt": "2025-05-13T10:00:00Z", "message": "Created"},
        ExportType.PRODUCTIVITY,
    )
    assert job.status is None
    assert not job.finished
    assert not job.reused


def test_the_reused_answer_is_recognised_by_its_message_or_its_status():
    answer = {"exportId": "exp_1", "message": "Using existing export with identical parameters"}
    assert ExportJob.from_json(answer, ExportType.EFFICIENCY).reused
    assert ExportJob.from_json({"exportId": "exp_1"}, ExportType.EFFICIENCY, reused=True).reused


def test_a_failed_job_keeps_the_server_s_reason_from_error_or_message():
    for key in ("error", "message"):
        job = ExportJob.from_json(
            {"exportId": "exp_1", "status": "FAILED", key: "Org tree too large"},
            ExportType.EFFICIENCY,
        )
        assert job.message == "Org tree too large"


@pytest.mark.parametrize(
    "answer",
    [None, [], "exp_1", {}, {"exportId": ""}, {"exportId": None}, {"exportId": True}],
)
def test_an_answer_without_export_id_is_refused(answer):
    with pytest.raises(ValueError, match="no exportId"):
        ExportJob.from_json(answer, ExportType.EFFICIENCY)


def test_a_numeric_export_id_is_kept_as_text():
    assert ExportJob.from_json({"exportId": 1234}, ExportType.EFFICIENCY).export_id == "1234"


def test_odd_download_fields_are_ignored():
    job = ExportJob.from_json(
        {"exportId": "e", "status": "COMPLETED", "download": {"url": 3, "sizeBytes": True}},
        ExportType.PRODUCTIVITY,
    )
    assert job.download_url is None
    assert job.size_bytes is None


def test_job_round_trips_through_plain_values():
    job = ExportJob.from_json(
        {
            "exportId": "exp_1",
            "status": "completed",
            "download": {"url": "/x", "filename": "a.csv", "sizeBytes": 3},
        },
        ExportType.TIME_IN_STATUS,
        reused=True,
    )
    data = json.loads(json.dumps(job.to_dict()))
    assert ExportJob.from_dict(data) == job
    # A payload written by another version: keys it does not know are ignored.
    assert ExportJob.from_dict({**data, "new_field": 1}) == job
