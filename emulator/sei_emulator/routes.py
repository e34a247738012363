"""The emulator's endpoints: which paths exist, which methods they take, what they answer.

=========  ==================================  ==========================================
method     path                                answer
=========  ==================================  ==========================================
POST       /v2/insights/teams/reports          a team or contributor CSV (``?format=csv``)
GET        /v2/org-trees                       ``[{"id", "name", "rootTeamRefId"}]``
GET        /v2/org-trees/{id}                  ``{"id", "name", "rootTeamRefId"}``
GET        /v2/org-trees/{id}/teams            ``[{"refId", "name", "parentRefId"}]``
=========  ==================================  ==========================================

Paths are matched without a trailing slash; an unknown path is a 404, a known path with
another method a 405. Authentication and faults are the HTTP layer's business (:mod:`.server`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sei_emulator.org import Org, OrgTree
from sei_emulator.reports import contributor_report, team_report
from sei_emulator.responses import (
    Response,
    csv_response,
    error_response,
    json_response,
)
from sei_emulator.validation import (
    ApiError,
    TeamReportRequest,
    check_format,
    parse_report_request,
)


@dataclass(frozen=True)
class Call:
    """One routed request, as an endpoint sees it."""

    org: Org
    query: dict[str, str]
    body: bytes
    params: dict[str, str]
    report_bytes: int | None = None


Endpoint = Callable[[Call], Response]


def reports(call: Call) -> Response:
    """``POST /v2/insights/teams/reports?format=csv``: both export bodies."""
    check_format(call.query)
    request = parse_report_request(call.body, call.org)
    if isinstance(request, TeamReportRequest):
        report = team_report(call.org, request)
    else:
        report = contributor_report(call.org, request)
    return csv_response(report, call.report_bytes)


def _tree(call: Call) -> OrgTree:
    tree_id = call.params["tree_id"]
    tree = call.org.tree(int(tree_id)) if tree_id.isdigit() else None
    if tree is None:
        raise ApiError(404, f"Org tree not found: {tree_id}")
    return tree


def _tree_json(tree: OrgTree) -> dict[str, object]:
    return {"id": tree.id, "name": tree.name, "rootTeamRefId": tree.root_team_ref_id}


def org_trees(call: Call) -> Response:
    """``GET /v2/org-trees``."""
    return json_response(200, [_tree_json(t) for t in call.org.trees])


def org_tree(call: Call) -> Response:
    """``GET /v2/org-trees/{id}``."""
    return json_response(200, _tree_json(_tree(call)))


def org_tree_teams(call: Call) -> Response:
    """``GET /v2/org-trees/{id}/teams``: every team of the tree, pre-order."""
    teams = call.org.subtree(_tree(call).root_team_ref_id)
    return json_response(
        200, [{"refId": t.ref_id, "name": t.name, "parentRefId": t.parent_ref_id} for t in teams]
    )


ROUTES: tuple[tuple[re.Pattern[str], dict[str, Endpoint]], ...] = (
    (re.compile(r"/v2/insights/teams/reports"), {"POST": reports}),
    (re.compile(r"/v2/org-trees"), {"GET": org_trees}),
    (re.compile(r"/v2/org-trees/(?P<tree_id>[^/]+)"), {"GET": org_tree}),
    (re.compile(r"/v2/org-trees/(?P<tree_id>[^/]+)/teams"), {"GET": org_tree_teams}),
)


def match(path: str) -> tuple[dict[str, Endpoint], dict[str, str]] | None:
    """The methods a path takes and its path parameters, or None for an unknown path."""
    path = path.rstrip("/") or "/"
    for pattern, methods in ROUTES:
        found = pattern.fullmatch(path)
        if found:
            return methods, found.groupdict()
    return None


def call_endpoint(endpoint: Endpoint, call: Call) -> Response:
    """Run ``endpoint``; an :class:`ApiError` becomes its JSON error response."""
    try:
        return endpoint(call)
    except ApiError as err:
        return error_response(err.status, err.message)
