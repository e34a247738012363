"""Authentication, routing, logging: who may call what, and what the emulator remembers."""

from __future__ import annotations

import logging

import pytest
import requests
from emu_helpers import AUTH, KEY, post_report, team_body
from sei_emulator import SEIEmulator


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": KEY},
        {"X-API-KEY": KEY},
        {"authorization": f"ApiKey {KEY}"},
        {"Authorization": f"apikey {KEY}"},
        {"authorization": f"APIKEY {KEY}"},
    ],
)
def test_auth_variants_are_accepted(shared_emulator, headers):
    assert post_report(shared_emulator, team_body(), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "wrong"},
        {"authorization": f"Bearer {KEY}"},
        {"authorization": "ApiKey "},
        {"SEI_API_KEY": KEY},
    ],
)
def test_missing_or_wrong_key_is_401_json(shared_emulator, headers):
    url = f"{shared_emulator.base_url}/v2/insights/teams/reports?format=csv"
    r = requests.post(url, json=team_body(), headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.json()["status"] == "error"
    assert r.json()["message"]
    assert KEY not in r.text


def test_org_trees_need_auth(shared_emulator):
    r = requests.get(f"{shared_emulator.base_url}/v2/org-trees", timeout=10)
    assert r.status_code == 401
    assert r.json()["status"] == "error"


def test_harness_account_and_scope_params_are_accepted_and_query_recorded(emulator):
    headers = {**AUTH, "Harness-Account": "abc123"}
    query = "format=csv&projectIdentifier=myproject&orgIdentifier=default"
    assert post_report(emulator, team_body(), headers=headers, query=query).status_code == 200
    recorded = emulator.requests[-1]
    assert recorded.query == {
        "format": "csv", "projectIdentifier": "myproject", "orgIdentifier": "default"
    }  # fmt: skip
    assert recorded.method == "POST"
    assert recorded.path == "/v2/insights/teams/reports"
    assert recorded.body == team_body()
    assert recorded.status == 200
    assert recorded.bytes_sent > 0
    assert recorded.fault is None


def test_unknown_path_is_404_json(shared_emulator):
    r = requests.get(f"{shared_emulator.base_url}/v2/nope", headers=AUTH, timeout=10)
    assert r.status_code == 404
    assert r.json()["status"] == "error"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/insights/teams/reports?format=csv"),
        ("PUT", "/v2/insights/teams/reports?format=csv"),
        ("POST", "/v2/org-trees"),
        ("DELETE", "/v2/org-trees/1/teams"),
    ],
)
def test_wrong_method_is_405(shared_emulator, method, path):
    r = requests.request(method, f"{shared_emulator.base_url}{path}", headers=AUTH, timeout=10)
    assert r.status_code == 405
    assert r.json()["status"] == "error"
    assert r.headers["Allow"]


def test_the_key_never_reaches_logs_or_records(caplog, capsys):
    secret = "pat.account.token.very-secret-value"
    caplog.set_level(logging.DEBUG)
    with SEIEmulator(port=0, api_key=secret) as emu:
        ok = post_report(emu, team_body(), headers={"x-api-key": secret})
        bad = post_report(emu, team_body(), headers={"authorization": f"ApiKey {secret}x"})
        trees = requests.get(f"{emu.base_url}/v2/org-trees", headers={"x-api-key": secret})
        recorded = emu.requests
    assert (ok.status_code, bad.status_code, trees.status_code) == (200, 401, 200)
    out = capsys.readouterr()
    assert secret not in caplog.text + out.out + out.err
    assert secret not in repr(recorded)
    # one line per request: method, path, status, bytes
    lines = [r.getMessage() for r in caplog.records if r.name == "sei_emulator"]
    lines = [line for line in lines if not line.startswith("emulator:")]
    assert len(lines) == 3
    assert lines[0].startswith("POST /v2/insights/teams/reports 200 ")
    assert lines[1] == "POST /v2/insights/teams/reports 401 " + str(recorded[1].bytes_sent)
    assert lines[2].startswith("GET /v2/org-trees 200 ")


def test_keep_alive_connection_serves_several_requests(shared_emulator):
    with requests.Session() as s:
        s.headers.update(AUTH)
        for _ in range(3):
            assert s.get(f"{shared_emulator.base_url}/v2/org-trees", timeout=10).ok
            r = s.post(f"{shared_emulator.base_url}/v2/insights/teams/reports?format=csv",
                       json=team_body(), timeout=10)  # fmt: skip
            assert r.ok
