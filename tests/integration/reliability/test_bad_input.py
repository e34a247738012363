"""The bad-input matrix: invalid parameters fail the task with the field named, and send nothing.

Every case is a real DAG run (``dag.test()``), so templated values are rendered by Airflow
exactly as in production (a ``{{ ... }}`` that yields None renders the string ``"None"``; a
list renders as its ``repr``). A date or ``team_ref_id`` that renders empty or ``"None"``
means "the default" (the date rule, or the collection's id), so it is not bad input. Each
case asserts: the task failed, its exception names the field, the emulator saw no request at
all (``emu.requests == []``) and the destination folder holds only the previous good export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)

from .conftest import record
from .helpers import LOGICAL_DATE, PREVIOUS, SECRETS, one_task_dag

TEAM = SEITeamReportOperator
CONTRIB = SEIContributorReportOperator
BASE = {"collection_id": "123", "date_start": "2024-01-01", "date_end": "2024-01-31"}


@dataclass(frozen=True)
class Case:
    """One invalid input.

    :param kwargs: operator arguments replacing the valid ``BASE`` ones (None values stay).
    :param field: the name the failure must mention.
    :param drop: ``BASE`` arguments to leave out (so a default applies).
    :param extras: connection extras (bad connection settings).
    """

    id: str
    kind: str
    kwargs: dict[str, Any]
    field: str
    operator: type = TEAM
    drop: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)
    conn_id: str | None = None


C = Case
CASES: list[Case] = [
    # dates
    C("date-feb-30", "date", {"date_start": "2024-02-30"}, "date_start"),
    C("date-month-13", "date", {"date_start": "2024-13-01"}, "date_start"),
    C("date-us-format", "date", {"date_start": "01/02/2024"}, "date_start"),
    C("date-word", "date", {"date_end": "yesterday"}, "date_end"),
    C("date-int", "date", {"date_start": 20240101}, "date_start"),
    C("date-rendered-list", "template", {"date_end": "{{ [ds] }}"}, "date_end"),
    C("date-offset-garbage", "date", {"date_start": "2024-01-01T25:00:00-05:00"}, "date_start"),
    C("date-superscript", "date", {"date_end": "2024-01-3\u00b9"}, "date_end"),
    C("range-reversed", "range", {"date_start": "2024-03-01", "date_end": "2024-02-01"},
      "date_start"),
    C("range-start-after-default-end", "range", {"date_start": "2030-01-01"}, "date_start",
      drop=("date_end",)),
    C("range-end-before-default-start", "range", {"date_end": "2000-01-01"}, "date_end",
      drop=("date_start",)),
    # ids
    C("collection-empty", "id", {"collection_id": ""}, "collection_id"),
    C("collection-blank", "id", {"collection_id": "   "}, "collection_id"),
    C("collection-none", "id", {"collection_id": None}, "collection_id"),
    C("collection-rendered-none", "template", {"collection_id": "{{ params.get('team') }}"},
      "collection_id"),
    C("collection-list", "id", {"collection_id": ["123"]}, "collection_id"),
    C("team-ref-word", "id", {"team_ref_id": "abc"}, "team_ref_id"),
    C("team-ref-negative", "id", {"team_ref_id": -1}, "team_ref_id"),
    C("team-ref-fraction", "id", {"team_ref_id": "1.5"}, "team_ref_id"),
    C("team-ref-bool", "id", {"team_ref_id": True}, "team_ref_id"),
    C("team-ref-superscript", "id", {"team_ref_id": "\u00b2"}, "team_ref_id"),
    C("team-ref-5000-digits", "id", {"team_ref_id": "9" * 5000}, "team_ref_id"),
    C("collection-superscript", "id", {"collection_id": "12\u00b3"}, "collection_id"),
    C("collection-team-name", "id", {"collection_id": "Platform Team"}, "collection_id"),
    # metrics
    C("productivity-gets-dora", "metric", {"productivity_metrics": ["LEAD_TIME_FOR_CHANGES"]},
      "productivity_metrics"),
    C("efficiency-gets-productivity", "metric", {"efficiency_metrics": ["PR_VELOCITY_PER_DEV"]},
      "efficiency_metrics"),
    C("efficiency-unknown", "metric", {"efficiency_metrics": ["NOPE"]}, "efficiency_metrics"),
    C("productivity-empty-name", "metric", {"productivity_metrics": ["PR_VELOCITY_PER_DEV", ""]},
      "productivity_metrics"),
    C("productivity-dict", "metric", {"productivity_metrics": {"PR_VELOCITY_PER_DEV": 1}},
      "productivity_metrics"),
    C("productivity-numbers", "metric", {"productivity_metrics": [1, 2]}, "productivity_metrics"),
    C("productivity-rendered-list", "template",
      {"productivity_metrics": "{{ ['PR_VELOCITY_PER_DEV', 'NOPE'] }}"}, "productivity_metrics"),
    C("contributor-gets-dora", "metric", {"metrics": ["LEAD_TIME_FOR_CHANGES"]}, "metrics",
      CONTRIB),
    C("contributor-gets-team-name", "metric", {"metrics": ["PR_VELOCITY_PER_DEV"]}, "metrics",
      CONTRIB),
    C("contributor-unknown-string", "metric", {"metrics": "NOT_A_METRIC"}, "metrics", CONTRIB),
    # granularity, calculation type, booleans, options
    C("granularity-hourly", "choice", {"granularity": "hourly"}, "granularity"),
    C("granularity-quarterly", "choice", {"granularity": "quarterly"}, "granularity"),
    C("granularity-empty", "template", {"granularity": ""}, "granularity"),
    C("granularity-rendered-none", "template", {"granularity": "{{ params.get('g') }}"},
      "granularity"),
    C("contributor-granularity", "choice", {"granularity": "yearly"}, "granularity", CONTRIB),
    C("calculation-p99", "choice", {"calculation_type": "P99"}, "calculation_type"),
    C("calculation-average", "choice", {"calculation_type": "average"}, "calculation_type"),
    C("calculation-empty", "template", {"calculation_type": ""}, "calculation_type"),
    C("ratings-words", "choice", {"include_ratings": "yes please"}, "include_ratings", CONTRIB),
    C("ratings-rendered-none", "template", {"include_ratings": "{{ params.get('r') }}"},
      "include_ratings", CONTRIB),
    C("overwrite-maybe", "option", {"overwrite": "maybe"}, "overwrite"),
    C("overwrite-empty", "template", {"overwrite": ""}, "overwrite"),
    C("if-empty-ignore", "option", {"if_empty": "ignore"}, "if_empty"),
    C("if-empty-empty", "template", {"if_empty": ""}, "if_empty"),
    C("if-empty-none", "option", {"if_empty": None}, "if_empty"),
    C("overwrite-false-existing", "conflict", {"overwrite": False}, "overwrite"),
    # destinations ({out} is the test's output folder)
    C("destination-empty", "destination", {"destination": ""}, "destination"),
    C("destination-blank", "destination", {"destination": "  "}, "destination"),
    C("destination-none", "destination", {"destination": None}, "destination"),
    C("destination-rendered-none", "template", {"destination": "{{ params.get('dest') }}"},
      "destination"),
    C("destination-relative", "destination", {"destination": "reports/team.csv"}, "destination"),
    C("destination-unknown-scheme", "destination", {"destination": "nosuchscheme://b/k.csv"},
      "destination"),
    C("destination-no-path", "destination", {"destination": "file://"}, "destination"),
    # the connection
    C("conn-unknown", "connection", {}, "no_such_sei_conn", conn_id="no_such_sei_conn"),
    C("conn-auth-scheme", "connection", {}, "auth_scheme", extras={"auth_scheme": "bearer"}),
    C("conn-max-retries", "connection", {}, "max_retries", extras={"max_retries": -1}),
    C("conn-timeout", "connection", {}, "timeout", extras={"timeout": "soon"}),
    C("conn-backoff", "connection", {}, "backoff_initial",
      extras={"backoff_initial": 5, "backoff_max": 1}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, run_dag, rel_conn, emu, recorder, tmp_path, monkeypatch):
    if case.extras:
        rel_conn.set(**case.extras)
    monkeypatch.chdir(tmp_path)  # a relative destination must not land anywhere
    out = tmp_path / "out"
    out.mkdir()
    (out / "team.csv").write_bytes(PREVIOUS)
    kwargs = {k: v for k, v in BASE.items() if k not in case.drop}
    kwargs["destination"] = f"file://{out}/team.csv"
    kwargs.update(case.kwargs)
    if case.conn_id:
        kwargs["harness_sei_conn_id"] = case.conn_id
    dag_id = "bad_" + case.id.replace("-", "_")
    dag = one_task_dag(dag_id, case.operator, **kwargs)

    dag_run = run_dag(dag, LOGICAL_DATE)

    run = recorder.of(dag_id)
    message = str(run.exception)
    record(
        "bad_input",
        {"id": case.id, "kind": case.kind, "field": case.field, "operator": case.operator.__name__,
         "given": {k: v for k, v in case.kwargs.items()} or case.extras or case.conn_id,
         "error": f"{type(run.exception).__name__}: {message}"},
    )  # fmt: skip
    assert run_dag.states(dag_run) == {"export": "failed"}
    assert type(run.exception).__name__ == "AirflowFailException"  # no task retry
    assert case.field in message
    assert emu.requests == []  # nothing reached the server
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["out/team.csv"]
    assert (out / "team.csv").read_bytes() == PREVIOUS
    for secret in SECRETS:
        assert secret not in message


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
