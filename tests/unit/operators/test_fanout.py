"""The large-org fan-out against the in-process emulator (12 teams; ref ids 1, 123, ... 1008).

No test waits on a clock or asserts a duration: pacing is checked on the limiter's grants
(with a fake clock), concurrency on a server-side count of requests in flight.
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from sei_emulator import Fault, Faults

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.hooks import sei as sei_hook_module
from airflow_provider_sei.hooks.ratelimit import RateLimiter
from airflow_provider_sei.operators.fanout import SEIMultiTeamReportOperator

DATES = {"date_start": "2024-01-01", "date_end": "2024-01-31"}
ALL_TEAMS = [1, 123, 456, 789, *range(1001, 1009)]


def operator(tmp_path: Path, **kwargs: Any) -> SEIMultiTeamReportOperator:
    kwargs.setdefault("destination", f"file://{tmp_path}/teams/")
    kwargs.setdefault("merged_destination", f"file://{tmp_path}/merged.csv")
    kwargs.setdefault("requests_per_minute", None)
    if "team_ref_ids" not in kwargs:
        kwargs.setdefault("org_tree_id", 1)
    return SEIMultiTeamReportOperator(task_id="fanout", **{**DATES, **kwargs})


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(), newline="")))


def server_bytes(emulator: Any, team: int) -> bytes:
    """The report exactly as the server sends it, fetched without the provider."""
    body = {"collectionId": str(team), "teamRefId": team, "granularity": "weekly", **{
        "dateStart": DATES["date_start"], "dateEnd": DATES["date_end"],
        "productivity": {"metrics": []}, "efficiency": {"metrics": [], "calculationType": "MEAN"},
    }}  # fmt: skip
    response = requests.post(
        f"{emulator.base_url}/v2/insights/teams/reports?format=csv",
        json=body,
        headers={"x-api-key": "sei-emulator-key"},
        timeout=30,
    )
    response.raise_for_status()
    return response.content


def report_requests(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests if r.path.endswith("/reports")]


class FakeClock:
    """A clock that only moves when a worker 'sleeps': pacing without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float, cancel: threading.Event | None) -> bool:
        with self.lock:
            self.now += seconds
        return False


class RecordingLimiter(RateLimiter):
    """The real limiter on a fake clock, recording each grant."""

    def __init__(self, requests_per_minute: float, **kwargs: Any) -> None:
        clock = FakeClock()
        super().__init__(requests_per_minute, clock=clock, sleep=clock.sleep, **kwargs)
        self.grants: list[float] = []

    def acquire(
        self, cancel: threading.Event | None = None, max_wait: float | None = None
    ) -> float:
        at = super().acquire(cancel, max_wait)
        self.grants.append(at)
        return at


@pytest.fixture
def fake_limiter(monkeypatch: pytest.MonkeyPatch) -> list[RecordingLimiter]:
    """Give the hook limiters on a fake clock (no real waiting); the list collects them."""
    made: list[RecordingLimiter] = []

    def factory(rpm: float, **kwargs: Any) -> RecordingLimiter:
        made.append(RecordingLimiter(rpm, **kwargs))
        return made[-1]

    monkeypatch.setattr(sei_hook_module, "RateLimiter", factory)
    return made


# -- the happy paths ----------------------------------------------------------------------------


def test_org_tree_gives_one_file_per_team_and_one_merged_csv(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    summary = operator(tmp_path, max_concurrency=4).execute({})
    seen = sei_emulator.requests

    files = sorted(p.name for p in (tmp_path / "teams").iterdir())
    assert files == sorted(f"team-{t}.csv" for t in ALL_TEAMS)
    # Each file is exactly the bytes the server sent for that team.
    for team in (1, 456, 1008):
        assert (tmp_path / "teams" / f"team-{team}.csv").read_bytes() == server_bytes(
            sei_emulator, team
        )
    merged = read_csv(tmp_path / "merged.csv")
    header, rows = merged[0], merged[1:]
    # One header (the union), every team once: the root's export holds them all.
    assert [r for r in merged if r == header] == [header]
    assert len(rows) == len(set(map(tuple, rows))) == 12
    root = read_csv(tmp_path / "teams" / "team-1.csv")
    assert header == root[0]
    assert sorted(rows) == sorted(root[1:])
    per_team_rows = sum(len(read_csv(tmp_path / "teams" / f)) - 1 for f in files)
    assert summary == {
        "teams": 12,
        "succeeded": 12,
        "failed": [],
        "destination": f"file://{tmp_path}/teams",
        "files": 12,
        "bytes": sum((tmp_path / "teams" / f).stat().st_size for f in files),
        "rows": per_team_rows,
        "throttled": 0,
        "date_start": "2024-01-01",
        "date_end": "2024-01-31",
        "merged_uri": f"file://{tmp_path}/merged.csv",
        "merged_rows": 12,
        "merged_bytes": (tmp_path / "merged.csv").stat().st_size,
        "duplicates_dropped": per_team_rows - 12,
        "columns": header,
    }
    # The org tree was listed once, each team exported once; no temporary file is left.
    assert [r.path for r in seen].count("/v2/org-trees/1/teams") == 1
    assert sorted(r.body["teamRefId"] for r in seen if r.body) == ALL_TEAMS
    assert not list(tmp_path.rglob("*.tmp"))


def test_team_id_list_skips_the_listing_and_drops_repeats(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    summary = operator(tmp_path, team_ref_ids=[456, "789", 456], merged_destination=None).execute(
        {}
    )
    assert sorted(p.name for p in (tmp_path / "teams").iterdir()) == [
        "team-456.csv",
        "team-789.csv",
    ]
    assert not (tmp_path / "merged.csv").exists()
    assert (summary["teams"], summary["files"], summary.get("merged_uri")) == (2, 2, None)
    assert [r.path for r in sei_emulator.requests] == ["/v2/insights/teams/reports"] * 2
    # collectionId and teamRefId name the same team, as the API advises.
    assert {(r.body["collectionId"], r.body["teamRefId"]) for r in sei_emulator.requests} == {
        ("456", 456),
        ("789", 789),
    }


def test_merged_only_with_a_rendered_id_list_and_request_parameters(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    summary = operator(
        tmp_path,
        team_ref_ids="[123, 1001]",  # what a Jinja template renders
        destination=None,
        granularity="monthly",
        efficiency_metrics=["LEAD_TIME_FOR_CHANGES"],
        calculation_type="P90",
    ).execute({})
    header = read_csv(tmp_path / "merged.csv")[0]
    assert header == ["Collection Name", "Lead Time for Changes (p90)"]
    assert summary["files"] == 0
    assert summary["destination"] is None
    assert not (tmp_path / "teams").exists()
    body = report_requests(sei_emulator)[0].body
    assert body["granularity"] == "monthly"
    assert body["efficiency"] == {"metrics": ["LEAD_TIME_FOR_CHANGES"], "calculationType": "P90"}
    assert "productivity" not in body


def test_empty_reports_give_empty_files(sei_conn: Any, tmp_path: Path) -> None:
    op = operator(tmp_path, team_ref_ids=[123, 456], date_start="2020-01-01", date_end="2020-01-31")
    summary = op.execute({})
    assert (tmp_path / "teams" / "team-123.csv").read_bytes() == b""
    assert (tmp_path / "merged.csv").read_bytes() == b""
    assert (summary["rows"], summary["merged_rows"], summary["columns"]) == (0, 0, [])


def test_filename_pattern(sei_conn: Any, tmp_path: Path) -> None:
    operator(
        tmp_path,
        team_ref_ids=[123],
        filename_pattern="sei-{team_ref_id}-{date_start}-{granularity}.csv",
    ).execute({})
    assert [p.name for p in (tmp_path / "teams").iterdir()] == ["sei-123-2024-01-01-weekly.csv"]


# -- concurrency and the rate budget ------------------------------------------------------------


def test_concurrency_is_bounded_by_max_concurrency(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock, in_flight, peak = threading.Lock(), [0], [0]
    real_wait = sei_emulator._wait

    def counting_wait(ms: float) -> None:  # the server's latency: the request is in flight
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            real_wait(ms)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(sei_emulator, "_wait", counting_wait)
    sei_emulator.set_faults(Faults(latency_ms=150))
    summary = operator(tmp_path, team_ref_ids=ALL_TEAMS, max_concurrency=3).execute({})
    assert summary["succeeded"] == 12
    assert peak[0] == 3  # never more than 3 at once, and the 3 threads really overlap


def test_every_request_pays_the_shared_budget(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path, fake_limiter: list[Any]
) -> None:
    op = operator(tmp_path, requests_per_minute="6", max_concurrency=4)
    op.execute({})
    (limiter,) = fake_limiter
    assert op.hook.rate_limiter is limiter  # one limiter, in the hook every thread shares
    assert (limiter.budget, op.hook.pool_maxsize) == (6.0, 4)
    grants = sorted(limiter.grants)
    # The listing and the 12 exports each took one grant, evenly spaced at >= 60 / 6 s.
    assert len(grants) == len(sei_emulator.requests) == 13
    assert min(b - a for a, b in itertools.pairwise(grants)) >= 10.0
    assert all(sum(1 for g in grants if start <= g < start + 60) <= 6 for start in grants)


def test_a_429_slows_every_worker_and_the_hook_retries_it(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path, fake_limiter: list[Any]
) -> None:
    # Retry-After: 0 keeps the hook's own backoff instant; real Harness sends none.
    sei_emulator.set_faults(Faults(script=[Fault.status(429, retry_after=0)]))
    summary = operator(tmp_path, team_ref_ids=[123, 456, 789], requests_per_minute=60).execute({})
    (limiter,) = fake_limiter
    assert summary["failed"] == []
    assert summary["throttled"] == 1
    assert limiter.throttled == 1
    # The emulator records a request when its response ends, and the workers run at once:
    # the scripted 429 goes to whichever request arrives first, but may be recorded second.
    assert sorted(r.status for r in sei_emulator.requests) == [200, 200, 200, 429]


def test_requests_per_minute_none_means_no_limiter(
    sei_conn: Any, tmp_path: Path, fake_limiter: list[Any]
) -> None:
    for budget in ("0", None, "None", ""):
        op = operator(tmp_path, team_ref_ids=[123], requests_per_minute=budget)
        assert op.execute({})["throttled"] == 0
        assert op.hook.rate_limiter is None
    assert fake_limiter == []


# -- failures -----------------------------------------------------------------------------------


def test_a_failing_team_fails_the_task_after_the_others_ran(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    sei_conn.set(max_retries=0)
    sei_emulator.set_faults(Faults(script=[Fault.status(500, "backend exploded")]))
    op = operator(tmp_path, team_ref_ids=[123, 456, 789], max_concurrency=1)
    with pytest.raises(AirflowException, match="1 of 3 team exports failed") as raised:
        op.execute({})
    assert "team 123: SEI API error 500" in str(raised.value)
    assert "backend exploded" in str(raised.value)
    # The other teams ran and their files are in place; the incomplete merge is not written.
    assert sorted(p.name for p in (tmp_path / "teams").iterdir()) == [
        "team-456.csv",
        "team-789.csv",
    ]
    assert not (tmp_path / "merged.csv").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_max_failed_teams_tolerates_failures_and_merges_the_rest(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    # 999999 is no team of the org: the API answers an error that is not retried.
    summary = operator(tmp_path, team_ref_ids=[123, 999999, 456], max_failed_teams=1).execute({})
    assert summary["failed"] == [999999]
    assert summary["succeeded"] == 2
    merged = read_csv(tmp_path / "merged.csv")
    expected = read_csv(tmp_path / "teams" / "team-123.csv")[1:]
    expected += [r for r in read_csv(tmp_path / "teams" / "team-456.csv")[1:] if r not in expected]
    assert merged[1:] == expected


def test_an_auth_failure_stops_the_fan_out_at_once(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    sei_conn.api_key = "wrong-key"
    sei_conn.set()
    op = operator(tmp_path, team_ref_ids=ALL_TEAMS, max_concurrency=1)
    # A retry of the task would fail the same way: no retries.
    with pytest.raises(AirflowFailException, match="12 of 12 team exports failed") as raised:
        op.execute({})
    assert "SEI API error 401" in str(raised.value)
    assert "not started" in str(raised.value)
    assert len(sei_emulator.requests) == 1


# -- parameters ---------------------------------------------------------------------------------


def test_exactly_one_source_of_teams_and_at_least_one_destination() -> None:
    with pytest.raises(ValueError, match="exactly one of org_tree_id and team_ref_ids"):
        SEIMultiTeamReportOperator(task_id="t", org_tree_id=1, team_ref_ids=[1], destination="x/")
    with pytest.raises(ValueError, match="exactly one"):
        SEIMultiTeamReportOperator(task_id="t", destination="x/")
    with pytest.raises(ValueError, match="destination"):
        SEIMultiTeamReportOperator(task_id="t", org_tree_id=1)


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"merged_destination": "file:///tmp/folder/"}, "merged_destination", "not a folder"),
        ({"max_concurrency": 0}, "max_concurrency", "an integer >= 1"),
        ({"max_concurrency": "abc"}, "max_concurrency", "an integer >= 1"),
        ({"max_concurrency": "\u00b2"}, "max_concurrency", "an integer >= 1"),
        ({"requests_per_minute": -1}, "requests_per_minute", "a number >= 0"),
        ({"requests_per_minute": "fast"}, "requests_per_minute", "a number >= 0"),
        ({"max_failed_teams": -1}, "max_failed_teams", "an integer >= 0"),
        ({"dedupe": "perhaps"}, "dedupe", "True or False"),
        ({"granularity": "hourly"}, "granularity", "daily, weekly, monthly"),
        ({"destination": ""}, "destination", "a URI"),
        ({"output_format": "xlsx"}, "output_format", "csv"),
        ({"add_columns": "['team_id', 'nope']"}, "add_columns", "date_start"),
        ({"team_ref_ids": ["\u00b2"]}, "team_ref_ids", "at most 18 digits"),
        ({"team_ref_ids": ["9" * 5000]}, "team_ref_ids", "at most 18 digits"),
        ({"team_ref_ids": "[123, 'Platform']"}, "team_ref_ids", "integer id"),
        ({"team_ref_ids": "[123"}, "team_ref_ids", "integer id"),
        ({"team_ref_ids": {"a": 1}}, "team_ref_ids", "a list of team ref ids"),
    ],
)
def test_invalid_parameters_fail_the_task_before_any_request(
    sei_conn: Any,
    sei_emulator: Any,
    tmp_path: Path,
    kwargs: dict[str, Any],
    field: str,
    allowed: str,
) -> None:
    kwargs.setdefault("team_ref_ids", [123])
    with pytest.raises(AirflowFailException) as raised:
        operator(tmp_path, **kwargs).execute({})
    cause = raised.value.__cause__
    assert isinstance(cause, SEIInvalidRequestError)
    assert cause.field == field
    assert allowed in cause.allowed
    assert "6036" not in str(raised.value)  # a count's message has no example id in it
    assert len(str(raised.value)) < 400  # a 5,000-digit id is cut, not echoed
    assert sei_emulator.requests == []
    assert not (tmp_path / "teams").exists()


@pytest.mark.parametrize(
    "pattern",
    ["{team}.csv", "sub/{team_ref_id}.csv", "{date_start}.csv", "{0}.csv", "{team_ref_id.x}"],
)
def test_a_bad_filename_pattern_fails_before_the_org_tree_is_listed(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path, pattern: str
) -> None:
    # "{date_start}.csv" would give every team the same file: one would overwrite the others.
    op = operator(tmp_path, org_tree_id=1, filename_pattern=pattern)
    with pytest.raises(AirflowFailException, match="Invalid filename_pattern") as raised:
        op.execute({})
    assert isinstance(raised.value.__cause__, SEIInvalidRequestError)
    assert sei_emulator.requests == []


def test_an_invalid_org_tree_id_fails_before_the_listing(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    with pytest.raises(AirflowFailException, match="Invalid org_tree_id"):
        operator(tmp_path, org_tree_id="my org").execute({})
    assert sei_emulator.requests == []


@pytest.mark.parametrize(
    "rendered", [[456, "789"], (456, 789), "[456, 789]", "['456', '789']", "456, 789", "(456, 789)"]
)
def test_team_ref_ids_in_every_rendered_form(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path, rendered: Any
) -> None:
    summary = operator(tmp_path, team_ref_ids=rendered, merged_destination=None).execute({})
    assert summary["teams"] == 2
    assert sorted(r.body["teamRefId"] for r in report_requests(sei_emulator)) == [456, 789]


def test_dedupe_false_keeps_repeated_rows(sei_conn: Any, tmp_path: Path) -> None:
    kept = operator(tmp_path, team_ref_ids=[1, 123], destination=None, dedupe="no").execute({})
    dropped = operator(
        tmp_path,
        team_ref_ids=[1, 123],
        destination=None,
        merged_destination=f"file://{tmp_path}/dedupe.csv",
        dedupe="true",
    ).execute({})
    assert kept["duplicates_dropped"] == 0
    assert dropped["duplicates_dropped"] > 0
    assert kept["merged_rows"] == dropped["merged_rows"] + dropped["duplicates_dropped"]


def test_the_sei_namespace_in_both_destinations(sei_conn: Any, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    with DAG("fanout_ns", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        op = SEIMultiTeamReportOperator(
            task_id="fanout",
            team_ref_ids="{{ [123, 456] }}",
            granularity="MONTHLY",
            output_format="csv.gz",
            destination=f"file://{tmp_path}/{{{{ sei.granularity }}}}/{{{{ sei.date_start }}}}/",
            merged_destination=f"file://{tmp_path}/all-{{{{ sei.date_end }}}}{{{{ sei.suffix }}}}",
            requests_per_minute=None,
        )
    week = {
        "data_interval_start": pendulum.datetime(2024, 1, 1),
        "data_interval_end": pendulum.datetime(2024, 1, 8),
    }
    context: dict[str, Any] = {"dag": op.dag, "params": {}, **week}
    op.render_template_fields(context)
    summary = op.execute(context)
    assert summary["merged_uri"] == f"file://{tmp_path}/all-2024-01-07.csv.gz"
    assert sorted(p.name for p in (tmp_path / "monthly" / "2024-01-01").iterdir()) == [
        "team-123.csv.gz",
        "team-456.csv.gz",
    ]


def test_deprecated_parameter_names_still_work_and_warn(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    with pytest.warns(DeprecationWarning, match="is deprecated: use") as record:
        op = operator(
            tmp_path,
            team_ref_ids=[123],
            sei_conn_id="harness_sei_default",
            destination_conn_id=None,
        )
    assert sorted(str(w.message) for w in record) == [
        "destination_conn_id is deprecated: use dest_conn_id",
        "sei_conn_id is deprecated: use harness_sei_conn_id",
    ]
    assert op.harness_sei_conn_id == "harness_sei_default"
    assert op.execute({})["succeeded"] == 1


def test_on_kill_stops_workers_waiting_for_the_rate_limiter(
    sei_conn: Any, sei_emulator: Any, tmp_path: Path
) -> None:
    # One request a minute: the first team goes at once, the second waits ~61 s for its slot.
    op = operator(tmp_path, team_ref_ids=[123, 456], requests_per_minute=1, max_concurrency=2)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            op.execute({})
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    waiting = threading.Event()
    for _ in range(1000):  # until the second worker sits in the limiter (bounded: <= 10 s)
        limiter = op.__dict__.get("hook") and op.hook.rate_limiter
        if limiter is not None and limiter.waited > 0:
            break
        waiting.wait(0.01)
    assert op.hook.rate_limiter.waited > 30  # really waiting for the next minute's slot
    started = time.monotonic()
    op.on_kill()
    worker.join(timeout=10)
    elapsed = time.monotonic() - started
    assert not worker.is_alive()
    assert elapsed < 5, elapsed
    assert isinstance(outcome["error"], AirflowException)
    assert "cancelled while waiting for the rate limiter" in str(outcome["error"])
    assert len(report_requests(sei_emulator)) == 1
    assert not (tmp_path / "merged.csv").exists()


# -- in a DAG -----------------------------------------------------------------------------------


def test_dag_run_with_a_static_org_export_and_mapped_team_chunks(
    sei_conn: Any, tmp_path: Path, run_dag: Any
) -> None:
    from airflow.sdk import DAG

    with DAG("sei_fanout_test", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        SEIMultiTeamReportOperator(
            task_id="whole_org",
            org_tree_id="{{ params.tree }}",
            destination=f"file://{tmp_path}/{{{{ ds }}}}/teams/",
            merged_destination=f"file://{tmp_path}/{{{{ ds }}}}/org.csv",
            requests_per_minute=None,
            params={"tree": 1},
        )
        # Across workers: one mapped task per chunk of teams, each with its own threads.
        SEIMultiTeamReportOperator.partial(
            task_id="chunks",
            # a mapped task renders through MappedOperator: the sei namespace must still be there
            merged_destination=f"file://{tmp_path}/chunk-{{{{ ti.map_index }}}}"
            "-{{ sei.date_end }}{{ sei.suffix }}",
            requests_per_minute=None,
            max_concurrency=2,
        ).expand(team_ref_ids=[[123, 1001], [456]])

    dag_run = run_dag(dag, logical_date=pendulum.datetime(2024, 2, 1))
    assert run_dag.states(dag_run) == {
        "whole_org": "success",
        "chunks[0]": "success",
        "chunks[1]": "success",
    }
    whole = run_dag.xcom(dag_run, "whole_org")
    assert (whole["teams"], whole["merged_rows"]) == (12, 12)
    # A manual run's data interval is zero-length: the day before it, as for the team operator.
    assert (whole["date_start"], whole["date_end"]) == ("2024-01-31", "2024-01-31")
    assert len(list((tmp_path / "2024-02-01" / "teams").iterdir())) == 12
    assert run_dag.xcom(dag_run, "chunks", map_index=1)["teams"] == 1
    assert (tmp_path / "chunk-0-2024-01-31.csv").exists()
    assert (tmp_path / "chunk-1-2024-01-31.csv").exists()
