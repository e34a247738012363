"""Helpers for the V2 export tests: bodies, a fake clock, create / poll / download calls."""

from __future__ import annotations

import copy
import csv
import http.client
import io
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from sei_emulator import SEIEmulator

KEY = "sei-emulator-key"
V2_AUTH = {"authorization": f"ApiKey {KEY}"}
IDS = {"projectIdentifier": "myproject", "orgIdentifier": "default"}
TYPES = ("efficiency", "productivity", "sprint", "ba", "ticket-data")
GRANULARITY = {
    "efficiency": "MONTHLY",
    "productivity": "monthly",
    "sprint": "MONTHLY",
    "ba": "MONTHLY",
    "ticket-data": "weekly",
}
#: 2025-05-13T10:00:00Z, the pages' example time.
T0 = 1_747_130_400.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def export_body(export_type: str, **overrides: Any) -> dict[str, Any]:
    """A valid body for ``export_type`` (team 456, Q1 2024); ``options_X=`` sets an option."""
    body: dict[str, Any] = {
        "scope": {"teamId": "456"},
        "dateRange": {"start": "2024-01-01", "end": "2024-03-31"},
        "options": {"granularity": GRANULARITY[export_type]},
    }
    for key, value in overrides.items():
        if key.startswith("options_"):
            body["options"][key.removeprefix("options_")] = value
        else:
            body[key] = value
    return copy.deepcopy(body)


def url(emu: SEIEmulator, export_type: str, *rest: str) -> str:
    return "/".join([f"{emu.base_url}/v2/insights/{export_type}/exports", *rest])


def create(
    emu: SEIEmulator,
    export_type: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> requests.Response:
    body = export_body(export_type) if body is None else body
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, (str, bytes)) else {"json": body}
    return requests.post(
        url(emu, export_type),
        headers=V2_AUTH if headers is None else headers,
        params=IDS if params is None else params,
        timeout=30,
        **kwargs,
    )


def get(
    emu: SEIEmulator, path: str, params: dict[str, str] | None = None, **kwargs: Any
) -> requests.Response:
    """GET ``path`` (relative to the base URL) with the V2 auth and identifiers."""
    kwargs.setdefault("headers", V2_AUTH)
    return requests.get(
        emu.base_url + path, params=IDS if params is None else params, timeout=30, **kwargs
    )


def poll(emu: SEIEmulator, export_type: str, export_id: str, **kwargs: Any) -> requests.Response:
    return get(emu, f"/v2/insights/{export_type}/exports/{export_id}", **kwargs)


def download(
    emu: SEIEmulator, export_type: str, export_id: str, **kwargs: Any
) -> requests.Response:
    return get(emu, f"/v2/insights/{export_type}/exports/{export_id}/download", **kwargs)


def completed(
    emu: SEIEmulator, export_type: str, body: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Create a job and poll it until it is done: its id and its last status."""
    export_id = create(emu, export_type, body).json()["exportId"]
    for _ in range(50):
        status = poll(emu, export_type, export_id).json()
        if status["status"].upper() not in ("QUEUED", "PROCESSING"):
            return export_id, status
    raise AssertionError(f"{export_id} never finished")


def export_csv(emu: SEIEmulator, export_type: str, body: dict[str, Any] | None = None) -> bytes:
    """The plain CSV bytes of a completed export."""
    export_id, _ = completed(emu, export_type, body)
    return download(emu, export_type, export_id).content


def table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def raw_get(emu: SEIEmulator, path: str, headers: dict[str, str] | None = None):
    """GET with http.client (no automatic decoding): the response and the connection."""
    parts = urlsplit(emu.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"{path}?{urlencode(IDS)}", headers={**V2_AUTH, **(headers or {})})
    return conn.getresponse(), conn
