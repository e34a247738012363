"""V2 requests: authentication forms, the required identifiers, body validation naming fields."""

from __future__ import annotations

import pytest
import requests
from sei_emulator import SEIEmulator, V2Settings
from v2_helpers import IDS, KEY, TYPES, completed, create, export_body, get, url

ERROR_KEYS = {"status", "code", "message", "correlationId"}


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"ApiKey {KEY}"},
        {"Authorization": f"Apikey {KEY}"},
        {"authorization": f"APIKEY {KEY}"},
        {"x-api-key": KEY},
        {"SEI_API_KEY": KEY},
        {"sei_api_key": KEY},
    ],
)
def test_every_documented_key_header_is_accepted(emulator, headers):
    r = create(emulator, "efficiency", headers=headers)
    assert r.status_code == 202
    assert get(emulator, "/v2/insights/efficiency/exports", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": f"Bearer {KEY}"},
        {"x-api-key": "wrong"},
        {"SEI_API_KEY": "wrong"},
        {"authorization": "ApiKey "},
    ],
)
def test_missing_or_wrong_key_is_401_in_the_platform_shape(emulator, headers):
    r = create(emulator, "ba", headers=headers)
    assert r.status_code == 401
    assert set(r.json()) == ERROR_KEYS
    assert r.json()["code"] == "INVALID_CREDENTIAL"
    assert KEY not in r.text
    assert len(emulator.jobs) == 0


@pytest.mark.parametrize("missing", ["projectIdentifier", "orgIdentifier"])
def test_identifiers_are_required_everywhere(emulator, missing):
    export_id, _ = completed(emulator, "efficiency")
    partial = {k: v for k, v in IDS.items() if k != missing}
    base = "/v2/insights/efficiency/exports"
    answers = [
        create(emulator, "efficiency", params=partial),
        get(emulator, f"{base}/{export_id}", params=partial),
        get(emulator, f"{base}/{export_id}/download", params=partial),
        get(emulator, base, params=partial),
        create(emulator, "efficiency", params={**partial, missing: ""}),
    ]
    for r in answers:
        assert r.status_code == 400
        assert missing in r.json()["message"]
        assert r.json()["errors"] == [{"fieldId": missing, "error": r.json()["message"]}]


def test_identifiers_can_be_optional():
    with SEIEmulator(port=0, v2=V2Settings(require_identifiers=False)) as emu:
        assert create(emu, "ba", params={}).status_code == 202


def test_auth_comes_before_identifiers(emulator):
    assert create(emulator, "ba", headers={}, params={}).status_code == 401


def body_without(export_type: str, *path: str) -> dict:
    body = export_body(export_type)
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


INVALID = [
    # (type, body, the field named)
    ("efficiency", body_without("efficiency", "scope"), "scope"),
    ("efficiency", export_body("efficiency", scope="456"), "scope"),
    ("efficiency", export_body("efficiency", scope={}), "scope"),
    ("efficiency", export_body("efficiency", scope={"teamId": 456}), "scope.teamId"),
    ("efficiency", export_body("efficiency", scope={"orgTreeName": ""}), "scope.orgTreeName"),
    ("ba", body_without("ba", "dateRange"), "dateRange"),
    ("ba", body_without("ba", "dateRange", "start"), "dateRange.start"),
    ("ba", body_without("ba", "dateRange", "end"), "dateRange.end"),
    (
        "ba",
        export_body("ba", dateRange={"start": "2024-1-01", "end": "2024-03-31"}),
        "dateRange.start",
    ),
    (
        "ba",
        export_body("ba", dateRange={"start": "2024-01-01", "end": "2024-02-30"}),
        "dateRange.end",
    ),
    (
        "ba",
        export_body("ba", dateRange={"start": "2024-04-01", "end": "2024-03-31"}),
        "dateRange.start",
    ),
    ("sprint", body_without("sprint", "options"), "options"),
    ("sprint", body_without("sprint", "options", "granularity"), "options.granularity"),
    ("efficiency", export_body("efficiency", options_granularity="DAILY"), "options.granularity"),
    (
        "productivity",
        export_body("productivity", options_granularity="SPRINT"),
        "options.granularity",
    ),
    ("ba", export_body("ba", options_granularity="SPRINT"), "options.granularity"),
    ("efficiency", export_body("efficiency", options_aggregation="p99"), "options.aggregation"),
    (
        "productivity",
        export_body("productivity", options_metricLevel="sprint"),
        "options.metricLevel",
    ),
    ("sprint", export_body("sprint", options_metricLevel="developer"), "options.metricLevel"),
    (
        "productivity",
        export_body("productivity", options_aggregationLevel="org"),
        "options.aggregationLevel",
    ),
    (
        "ticket-data",
        export_body("ticket-data", options_aggregationLevel="developer"),
        "options.aggregationLevel",
    ),
    ("efficiency", export_body("efficiency", options_format="json"), "options.format"),
    ("efficiency", export_body("efficiency", options_compression="zip"), "options.compression"),
    ("sprint", export_body("sprint", options_computationMode="HOURS"), "options.computationMode"),
    (
        "ticket-data",
        export_body("ticket-data", options_terminalDateColumn="closed_at"),
        "options.terminalDateColumn",
    ),
    ("efficiency", export_body("efficiency", metricGroups=["speed"]), "metricGroups"),
    ("efficiency", export_body("efficiency", metricGroups="lttc"), "metricGroups"),
    ("efficiency", export_body("efficiency", metrics=["LEAD_TIME_FOR_CHANGES"]), "metrics"),
    ("productivity", export_body("productivity", metrics=["LOC_ADDED"]), "metrics"),
    (
        "productivity",
        export_body("productivity", options_metricLevel="developer", metrics=["PR_VELOCITY"]),
        "metrics",
    ),
    ("sprint", export_body("sprint", metric=["SPRINT_SPEED"]), "metric"),
    ("ticket-data", export_body("ticket-data", issueStatuses="Done"), "issueStatuses"),
    ("ticket-data", export_body("ticket-data", issueStatuses=[" "]), "issueStatuses"),
]


@pytest.mark.parametrize(("export_type", "body", "field"), INVALID)
def test_invalid_bodies_are_400_naming_the_field(shared_emulator, export_type, body, field):
    r = create(shared_emulator, export_type, body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == ERROR_KEYS | {"errors"}
    assert r.json()["code"] == "INVALID_REQUEST"
    assert r.json()["errors"][0]["fieldId"] == field
    assert field in r.json()["message"] or field.split(".")[-1] in r.json()["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b""])
def test_malformed_bodies_are_400(shared_emulator, raw):
    r = requests.post(
        url(shared_emulator, "ba"), data=raw, params=IDS, headers={"x-api-key": KEY}, timeout=10
    )
    assert r.status_code == 400
    assert r.json()["status"] == "ERROR"


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        ({"teamId": "999"}, "scope.teamId"),
        ({"teamId": "platform"}, "scope.teamId"),
        ({"orgTreeName": "Nope"}, "scope.orgTreeName"),
    ],
)
def test_unknown_team_or_tree_is_404(shared_emulator, scope, field):
    r = create(shared_emulator, "efficiency", export_body("efficiency", scope=scope))
    assert r.status_code == 404
    assert r.json()["errors"][0]["fieldId"] == field


def test_400_comes_before_404(shared_emulator):
    body = export_body("ba", scope={"teamId": "999"}, options_granularity="HOURLY")
    assert create(shared_emulator, "ba", body).status_code == 400


@pytest.mark.parametrize(
    ("export_type", "extra"),
    [
        (
            "productivity",
            {"scope": {"teamId": "456", "orgTreeName": "*tree*"}},
        ),  # both, as documented
        ("productivity", {"options": {"granularity": "MONTHLY", "aggregationLevel": "DEVELOPER"}}),
        ("efficiency", {"options": {"granularity": "weekly", "aggregation": "P95"}}),
        ("efficiency", {"metricGroups": ["DF", "summary"], "metrics": ["cfr"]}),
        (
            "sprint",
            {
                "metric": ["sprint_commit"],
                "options": {"granularity": "sprint", "computationMode": "tickets"},
            },
        ),
        (
            "ticket-data",
            {
                "issueStatuses": ["in review", "Blocked"],
                "options": {"granularity": "DAILY", "terminalDateColumn": "VERSION_RELEASE_DATE"},
            },
        ),
        ("ba", {"metricGroups": ["categorized"], "scope": {"orgTreeName": "*tree*"}}),
        (
            "efficiency",
            {
                "scope": {
                    "teamId": "456",
                    "orgIdentifier": "default",
                    "projectIdentifier": "myproject",
                },
                "unknownField": 1,
            },
        ),
    ],
)
def test_documented_forms_are_accepted(shared_emulator, export_type, extra):
    tree = shared_emulator.org.root.name
    body = export_body(export_type)
    for key, value in extra.items():
        if isinstance(value, dict) and "orgTreeName" in value:
            value = {**value, "orgTreeName": tree.upper()}
        body[key] = value
    r = create(shared_emulator, export_type, body)
    assert r.status_code in (200, 202), r.text


@pytest.mark.parametrize("export_type", TYPES)
def test_every_type_has_its_endpoints(shared_emulator, export_type):
    export_id, done = completed(shared_emulator, export_type)
    assert done["status"].upper() == "COMPLETED"
    listing = get(shared_emulator, f"/v2/insights/{export_type}/exports").json()
    assert export_id in [e["exportId"] for e in listing["exports"]]
