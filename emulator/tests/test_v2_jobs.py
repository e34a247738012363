"""V2 export jobs: lifecycle by polls or by time, the 30-minute reuse, listing, the job table."""

from __future__ import annotations

import json
import re

import pytest
import requests
from sei_emulator import JobStatus, SEIEmulator, V2Settings
from v2_helpers import (
    IDS,
    T0,
    TYPES,
    V2_AUTH,
    FakeClock,
    completed,
    create,
    download,
    export_body,
    get,
    poll,
    url,
)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def emu(clock):
    with SEIEmulator(port=0, clock=clock) as emulator:
        yield emulator


def statuses(emu, export_type, export_id, n):
    return [poll(emu, export_type, export_id).json()["status"] for _ in range(n)]


def test_create_answers_202_queued(emu):
    r = create(emu, "efficiency")
    assert r.status_code == 202
    assert r.json() == {
        "exportId": r.json()["exportId"],
        "status": "QUEUED",
        "createdAt": "2025-05-13T10:00:00Z",
        "message": "Export job created successfully",
    }
    assert re.fullmatch(r"exp_[0-9a-z]{8}", r.json()["exportId"])


@pytest.mark.parametrize("export_type", TYPES)
def test_default_lifecycle_is_two_polls_then_completed(emu, export_type):
    export_id = create(emu, export_type).json()["exportId"]
    seen = [s.upper() for s in statuses(emu, export_type, export_id, 4)]
    assert seen == ["QUEUED", "PROCESSING", "COMPLETED", "COMPLETED"]
    assert emu.jobs[export_id].polls == 4
    assert emu.jobs[export_id].status is JobStatus.COMPLETED


@pytest.mark.parametrize(
    ("polls", "expected"),
    [
        (0, ["COMPLETED"]),
        (1, ["QUEUED", "COMPLETED"]),
        (4, ["QUEUED", "PROCESSING", "PROCESSING", "PROCESSING", "COMPLETED"]),
    ],
)
def test_lifecycle_by_polls_is_configurable(clock, polls, expected):
    with SEIEmulator(port=0, clock=clock, v2=V2Settings(complete_after_polls=polls)) as emu:
        export_id = create(emu, "efficiency").json()["exportId"]
        assert statuses(emu, "efficiency", export_id, len(expected)) == expected


def test_lifecycle_by_time_follows_the_clock(clock):
    settings = V2Settings(complete_after_polls=None, complete_after_seconds=60)
    with SEIEmulator(port=0, clock=clock, v2=settings) as emu:
        export_id = create(emu, "ba").json()["exportId"]
        assert statuses(emu, "ba", export_id, 5) == ["QUEUED"] * 5  # polls do not count
        clock.advance(30)
        assert poll(emu, "ba", export_id).json()["status"] == "PROCESSING"
        clock.advance(45)
        done = poll(emu, "ba", export_id).json()
    assert done["status"] == "COMPLETED"
    assert done["completedAt"] == "2025-05-13T10:01:00Z"  # creation + 60 s, not the poll time


def test_polls_or_time_whichever_comes_first(clock):
    settings = V2Settings(complete_after_polls=10, complete_after_seconds=60)
    with SEIEmulator(port=0, clock=clock, v2=settings) as emu:
        by_time = create(emu, "ba").json()["exportId"]
        clock.advance(61)
        assert poll(emu, "ba", by_time).json()["status"] == "COMPLETED"
        by_polls = create(emu, "efficiency").json()["exportId"]
        assert statuses(emu, "efficiency", by_polls, 11)[-1] == "COMPLETED"


def test_download_before_completion_is_409(emu):
    export_id = create(emu, "efficiency").json()["exportId"]
    r = download(emu, "efficiency", export_id)
    assert r.status_code == 409
    assert r.json()["status"] == "ERROR"
    assert "QUEUED" in r.json()["message"]
    assert emu.jobs[export_id].polls == 0  # a download is not a poll


def test_unknown_or_foreign_export_id_is_404(emu):
    export_id = create(emu, "efficiency").json()["exportId"]
    for export_type, eid in (("efficiency", "exp_nothere"), ("ba", export_id)):
        r = poll(emu, export_type, eid)
        assert r.status_code == 404
        assert r.json()["code"] == "RESOURCE_NOT_FOUND"
        assert r.json()["correlationId"]


def test_identical_request_within_30_minutes_reuses_the_job(emu, clock):
    first = create(emu, "efficiency")
    clock.advance(29 * 60)
    # the same JSON, keys reordered and spaced differently
    same = json.dumps(dict(reversed(list(export_body("efficiency").items()))), indent=2)
    again = create(emu, "efficiency", same, headers={**V2_AUTH, "Content-Type": "application/json"})
    assert again.status_code == 200
    assert again.json() == {
        "exportId": first.json()["exportId"],
        "createdAt": first.json()["createdAt"],
        "message": "Using existing export with identical parameters",
    }
    assert len(emu.jobs) == 1
    assert emu.jobs[first.json()["exportId"]].reused == 1
    clock.advance(60)  # 30 minutes after the creation: a new job
    late = create(emu, "efficiency")
    assert late.status_code == 202
    assert late.json()["exportId"] != first.json()["exportId"]


@pytest.mark.parametrize("change", ["body", "identifiers", "type"])
def test_a_different_request_is_a_new_job(emu, change):
    first = create(emu, "efficiency").json()["exportId"]
    if change == "body":
        r = create(emu, "efficiency", export_body("efficiency", options_aggregation="p90"))
    elif change == "identifiers":
        r = create(emu, "efficiency", params={**IDS, "projectIdentifier": "other"})
    else:
        r = create(emu, "ba")
    assert r.status_code == 202
    assert r.json()["exportId"] != first


def test_reuse_can_be_switched_off(clock):
    with SEIEmulator(port=0, clock=clock, v2=V2Settings(reuse_seconds=0)) as emu:
        assert [create(emu, "ba").status_code for _ in range(2)] == [202, 202]


def test_a_reused_job_keeps_its_progress(emu):
    export_id, _ = completed(emu, "ba")
    assert create(emu, "ba").status_code == 200
    assert poll(emu, "ba", export_id).json()["status"] == "COMPLETED"


def test_export_ids_are_deterministic_from_the_seed():
    ids = []
    for _ in range(2):
        with SEIEmulator(port=0, seed=7) as emu:
            ids.append([create(emu, t).json()["exportId"] for t in TYPES])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == len(TYPES)


def test_list_newest_first_with_filters_and_pages(emu, clock):
    made = []
    for team, aggregation in (("456", "mean"), ("123", "mean"), ("456", "p90")):
        body = export_body("productivity", scope={"teamId": team}, options_aggregation=aggregation)
        made.append(create(emu, "productivity", body).json()["exportId"])
        clock.advance(1)
    completed(emu, "productivity", export_body("productivity", scope={"teamId": "789"}))
    polls_before = {i: emu.jobs[i].polls for i in made}
    listing = get(emu, "/v2/insights/productivity/exports").json()
    assert listing["total"] == 4
    assert listing["page"] == 0
    assert listing["limit"] == 20
    assert [e["exportId"] for e in listing["exports"]][1:] == made[::-1]
    assert {i: emu.jobs[i].polls for i in made} == polls_before  # listing is not polling
    team = get(emu, "/v2/insights/productivity/exports", {**IDS, "teamId": "456"}).json()
    assert [e["exportId"] for e in team["exports"]] == [made[2], made[0]]
    done = get(emu, "/v2/insights/productivity/exports", {**IDS, "status": "Completed"}).json()
    assert [e["status"] for e in done["exports"]] == ["completed"]
    page = get(emu, "/v2/insights/productivity/exports", {**IDS, "limit": "2", "page": "1"})
    assert [e["exportId"] for e in page.json()["exports"]] == [made[1], made[0]]
    assert get(emu, "/v2/insights/efficiency/exports").json()["exports"] == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "101"),
        ("limit", "0"),
        ("limit", "x"),
        ("page", "-1"),
        ("status", "DONE"),
    ],
)
def test_list_parameters_are_checked(emu, param, value):
    r = get(emu, "/v2/insights/ba/exports", {**IDS, param: value})
    assert r.status_code == 400
    assert r.json()["errors"][0]["fieldId"] == param


def test_jobs_table_and_reset(emu):
    export_id, _ = completed(emu, "sprint")
    job = emu.jobs[export_id]
    assert (job.type.value, job.request.team_id, job.created_at) == ("sprint", "456", T0)
    assert job.body == export_body("sprint")
    assert list(emu.jobs) == [export_id]
    assert export_id in emu.jobs
    assert [j.export_id for j in emu.jobs.values()] == [export_id]
    emu.reset()
    assert len(emu.jobs) == 0
    assert emu.requests == []
    assert poll(emu, "sprint", export_id).status_code == 404


def test_v2_requests_are_recorded(emu):
    export_id, _ = completed(emu, "ba")
    r = download(emu, "ba", export_id)
    rec = emu.requests
    assert [(q.method, q.path, q.status) for q in rec[:2]] == [
        ("POST", "/v2/insights/ba/exports", 202),
        ("GET", f"/v2/insights/ba/exports/{export_id}", 200),
    ]
    assert rec[0].body == export_body("ba")
    assert rec[0].query == IDS
    assert (rec[-1].path, rec[-1].bytes_sent) == (
        f"/v2/insights/ba/exports/{export_id}/download",
        len(r.content),
    )


def test_post_at_the_plural_sprint_path_is_405(emu):
    r = requests.post(
        url(emu, "sprints"), json=export_body("sprint"), headers=V2_AUTH, params=IDS, timeout=10
    )
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"
