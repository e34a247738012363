"""Each page's documented answers, per type by default and selectable by settings."""

from __future__ import annotations

import dataclasses

import pytest
from sei_emulator import SEIEmulator, V2Settings
from v2_helpers import TYPES, completed, create, download, export_body, get, poll

EXPECTED_DEFAULTS = {
    # type: (create answer's keys, status casing, where the download is)
    "efficiency": ({"exportId", "status", "createdAt", "message"}, "COMPLETED", "downloadUrl"),
    "ba": ({"exportId", "status", "createdAt", "message"}, "COMPLETED", "downloadUrl"),
    "ticket-data": ({"exportId", "status", "createdAt", "message"}, "COMPLETED", "downloadUrl"),
    "productivity": ({"exportId", "createdAt", "message"}, "completed", "download"),
    "sprint": (
        {"exportId", "status", "createdAt", "message", "createdBy", "metadata"},
        "COMPLETED",
        "download",
    ),
}


@pytest.mark.parametrize("export_type", TYPES)
def test_each_type_answers_as_its_page_documents(emulator, export_type):
    keys, status, where = EXPECTED_DEFAULTS[export_type]
    created = create(emulator, export_type).json()
    assert set(created) == keys
    export_id, done = completed(emulator, export_type)
    assert done["status"] == status
    assert set(done) == {"exportId", "status", "createdAt", "completedAt", where}
    segment = "sprints" if export_type == "sprint" else export_type
    link = f"/v2/insights/{segment}/exports/{export_id}/download"
    if where == "downloadUrl":
        assert done["downloadUrl"] == link
    else:
        assert done["download"]["url"] == link
        assert done["download"]["contentType"] == "text/csv"
        assert done["download"]["filename"].endswith(".csv")
    # the link is a path relative to the base URL
    assert get(emulator, link).content.startswith(b"Granularity,Team,Team_Hierarchy,")


def test_sprint_create_echoes_the_request(emulator):
    body = export_body("sprint", metric=["SPRINT_COMMIT"], options_computationMode="TICKETS")
    created = create(emulator, "sprint", body).json()
    assert created["metadata"] == body
    assert created["createdBy"]


def test_sprint_status_is_sized_and_served_at_both_paths(emulator):
    export_id = create(emulator, "sprint").json()["exportId"]
    assert poll(emulator, "sprints", export_id).json()["status"] == "QUEUED"
    assert poll(emulator, "sprint", export_id).json()["status"] == "PROCESSING"
    done = poll(emulator, "sprints", export_id).json()
    assert emulator.jobs[export_id].polls == 3  # both spellings poll the same job
    info = done["download"]
    assert info["compression"] == "none"
    plural, singular = (
        download(emulator, "sprints", export_id),
        download(emulator, "sprint", export_id),
    )
    assert plural.content == singular.content
    assert info["sizeBytes"] == len(plural.content)


def test_sprint_url_can_be_singular(emulator):
    emulator.set_v2(V2Settings(plural_sprint_url=False))
    export_id, done = completed(emulator, "sprint")
    assert done["download"]["url"] == f"/v2/insights/sprint/exports/{export_id}/download"


@pytest.mark.parametrize(
    ("export_type", "case", "expected"),
    [
        ("efficiency", "lower", ["queued", "processing", "completed"]),
        ("productivity", "upper", ["QUEUED", "PROCESSING", "COMPLETED"]),
    ],
)
def test_status_casing_is_selectable(emulator, export_type, case, expected):
    emulator.set_v2(V2Settings(status_case=case, create_shape="status"))
    created = create(emulator, export_type).json()
    assert created["status"] == expected[0]
    assert [
        poll(emulator, export_type, created["exportId"]).json()["status"] for _ in range(3)
    ] == expected


@pytest.mark.parametrize("shape", ["downloadUrl", "download", "download_sized"])
@pytest.mark.parametrize("export_type", ["efficiency", "productivity"])
def test_status_shape_is_selectable(emulator, export_type, shape):
    emulator.set_v2(V2Settings(status_shape=shape))
    export_id, done = completed(emulator, export_type)
    link = f"/v2/insights/{export_type}/exports/{export_id}/download"
    if shape == "downloadUrl":
        assert done["downloadUrl"] == link
        assert "download" not in done
        return
    assert "downloadUrl" not in done
    expected = {"url", "filename", "contentType"}
    if shape == "download_sized":
        expected |= {"sizeBytes", "compression"}
    assert set(done["download"]) == expected


@pytest.mark.parametrize(
    ("shape", "keys"),
    [
        ("status", {"exportId", "status", "createdAt", "message"}),
        ("no_status", {"exportId", "createdAt", "message"}),
        ("metadata", {"exportId", "status", "createdAt", "message", "createdBy", "metadata"}),
    ],
)
def test_create_shape_is_selectable(emulator, shape, keys):
    emulator.set_v2(V2Settings(create_shape=shape))
    assert set(create(emulator, "ba").json()) == keys


def test_settings_change_at_runtime_and_read_back():
    with SEIEmulator(port=0, v2=V2Settings(complete_after_polls=0)) as emu:
        assert emu.v2.complete_after_polls == 0
        emu.set_v2(dataclasses.replace(emu.v2, status_case="lower"))
        export_id = create(emu, "ba").json()["exportId"]
        assert poll(emu, "ba", export_id).json()["status"] == "completed"


def test_settings_are_validated():
    for bad in (
        {"status_case": "title"},
        {"status_shape": "link"},
        {"compression": "zip"},
        {"complete_after_polls": None},
        {"complete_after_polls": -1},
        {"gzip_content_type": "text/plain"},
    ):
        with pytest.raises(ValueError):
            V2Settings(**bad)
