"""Helpers for the emulator tests: request bodies, a report poster, CSV readers."""

from __future__ import annotations

import csv
import io
from typing import Any

import requests
from sei_emulator import SEIEmulator

KEY = "sei-emulator-key"
AUTH = {"x-api-key": KEY}
REPORTS = "/v2/insights/teams/reports"


def post_report(
    emu: SEIEmulator,
    body: Any,
    headers: dict[str, str] | None = None,
    query: str = "format=csv",
    **kwargs: Any,
) -> requests.Response:
    url = f"{emu.base_url}{REPORTS}" + (f"?{query}" if query else "")
    kwargs.setdefault("timeout", 30)
    if isinstance(body, (bytes, str)):
        return requests.post(url, data=body, headers=headers or AUTH, **kwargs)
    return requests.post(url, json=body, headers=headers or AUTH, **kwargs)


def rows(response: requests.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def as_dicts(response: requests.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


def team_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collectionId": "1",
        "teamRefId": 1,
        "dateStart": "2024-01-01",
        "dateEnd": "2024-12-31",
        "granularity": "weekly",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def contributor_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "collectionId": "1",
        "dateStart": "2025-11-03",
        "dateEnd": "2025-11-30",
        "granularity": "WEEKLY",
        "productivityContributors": {"metrics": []},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
