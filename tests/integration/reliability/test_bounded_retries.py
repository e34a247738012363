"""Bounded retries: the retry budget is configurable through the connection, every retry is
logged (attempt, status, wait), and the total time of an export has a computable bound.

The bound (``docs/reliability.md``): the waits add up to at most ``max_retries x
backoff_max``, and no export outlives ``max_elapsed`` plus one read timeout. Every attempt
runs inside one deadline at ``max_elapsed`` from the first request: connecting, waiting for
the status line, headers, body (an error body's excerpt included) and the waits between
attempts all end there, and no attempt starts after it. Each test measures the export's
wall-clock time (``time.monotonic()``) from the server's receipt of its first request to the
end of the try, and asserts it within that bound; the figures go to the doc.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sei_emulator import Fault, Faults

from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.operators.reports import SEITeamReportOperator

from .conftest import record
from .helpers import (
    FAST_EXTRAS,
    LOGICAL_DATE,
    REPORTS_PATH,
    TEAM_KWARGS,
    first_request_at,
    one_task_dag,
    requests_served,
    retry_lines,
)


def export(run_dag, recorder, tmp_path, name: str) -> tuple[Any, Any]:
    dag = one_task_dag(name, SEITeamReportOperator, destination=f"file://{tmp_path}/t.csv",
        **TEAM_KWARGS,
    )  # fmt: skip
    dag_run = run_dag(dag, LOGICAL_DATE)
    return run_dag.states(dag_run)["export"], recorder.of(name)


def worst_case_seconds(extras: dict[str, Any]) -> float:
    """The documented bound on one export's total time, from the connection's settings."""
    return extras["max_elapsed"] + extras["timeout"]


def export_seconds(run: Any, first_request: float) -> float:
    """The export's time as the bound counts it: from its first request to the end of the try."""
    assert run.ended is not None
    return run.ended - first_request


def test_the_policy_comes_from_the_connection_extras(rel_conn):
    rel_conn.set(max_retries=4, backoff_initial=0.2, backoff_max=3, max_elapsed=90)
    policy = SEIHook().retry_policy
    assert (policy.max_retries, policy.max_attempts) == (4, 5)
    assert (policy.backoff_initial, policy.backoff_max, policy.max_elapsed) == (0.2, 3, 90)
    # The computed budget of the waits, jitter at its largest: never above attempts x cap.
    waits = [min(policy.backoff_max, policy.backoff_initial * 2 ** (n - 1) * (1 + policy.jitter))
             for n in range(1, policy.max_attempts)]  # fmt: skip
    assert sum(waits) <= policy.max_retries * policy.backoff_max


def test_defaults_are_bounded():
    from airflow_provider_sei.hooks.retry import RetryPolicy

    policy = RetryPolicy()
    assert policy.max_retries * policy.backoff_max <= policy.max_elapsed
    assert policy.max_elapsed < float("inf")


@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_max_retries_bounds_the_attempts(
    max_retries, run_dag, rel_conn, emu, recorder, tmp_path, capfd
):
    rel_conn.set(max_retries=max_retries)
    script = [Fault.status(503)] * (max_retries + 2)
    emu.set_faults(Faults(script=script))
    state, _ = export(run_dag, recorder, tmp_path, f"bounded_attempts_{max_retries}")
    assert state == "failed"
    assert requests_served(emu, len(script), at_least=max_retries + 1) == max_retries + 1
    lines = retry_lines(capfd.readouterr().out)
    assert [line["attempt"] for line in lines] == list(range(1, max_retries + 1))


def test_every_retry_logs_attempt_status_and_wait(
    run_dag, rel_conn, emu, recorder, tmp_path, capfd
):
    rel_conn.set(max_retries=3)
    script = [Fault.status(503), Fault.status(429), Fault.status(502), Fault.status(500)]
    emu.set_faults(Faults(script=script))
    started = time.monotonic()
    state, run = export(run_dag, recorder, tmp_path, "bounded_log_lines")
    elapsed = time.monotonic() - started
    lines = retry_lines(capfd.readouterr().out)
    assert state == "failed"
    assert [(line["attempt"], line["max"], line["what"]) for line in lines] == [
        (1, 4, "HTTP 503"),
        (2, 4, "HTTP 429"),
        (3, 4, "HTTP 502"),
    ]
    initial, jitter = 0.05, 0.5  # FAST_EXTRAS backoff_initial, RetryPolicy's default jitter
    for n, line in enumerate(lines, start=1):  # exponential, jittered, logged to 0.01 s
        base = initial * 2 ** (n - 1)
        assert base - 0.01 <= line["wait"] <= base * (1 + jitter) + 0.01
    assert "SEI API error 500" in str(run.exception)
    extras = {**FAST_EXTRAS, "max_retries": 3}
    seconds = export_seconds(run, first_request_at(emu, run))
    assert seconds <= sum(line["wait"] for line in lines) + worst_case_seconds(extras)
    record("bounds", {"case": "4 faults, max_retries 3", "extras": extras,
                      "waits": [line["wait"] for line in lines], "seconds": round(seconds, 2),
                      "run_seconds": round(elapsed, 2), "bound": worst_case_seconds(FAST_EXTRAS),
                      "requests": 4})  # fmt: skip


def test_retry_after_is_honoured_but_capped(run_dag, rel_conn, emu, recorder, tmp_path, capfd):
    rel_conn.set(max_retries=1, backoff_max=1)
    emu.set_faults(Faults(script=[Fault.status(429, retry_after=3600)]))
    state, _ = export(run_dag, recorder, tmp_path, "bounded_retry_after_cap")
    lines = retry_lines(capfd.readouterr().out)
    assert state == "success"
    assert [(line["what"], line["wait"]) for line in lines] == [("HTTP 429", 1.0)]


def test_max_elapsed_stops_retrying_before_max_retries(
    run_dag, rel_conn, emu, recorder, tmp_path, capfd
):
    """50 retries allowed, but every attempt stalls past the 0.3 s read timeout: max_elapsed
    (2 s) ends the export long before the retries run out."""
    extras = {**FAST_EXTRAS, "max_retries": 50, "timeout": 0.3, "max_elapsed": 2}
    rel_conn.set(**extras)
    script = [Fault.stall(1.0)] * 51
    emu.set_faults(Faults(script=script))
    started = time.monotonic()
    state, run = export(run_dag, recorder, tmp_path, "bounded_max_elapsed")
    elapsed = time.monotonic() - started
    lines = retry_lines(capfd.readouterr().out)
    attempts = requests_served(emu, len(script))
    assert state == "failed"
    assert "read timeout" in str(run.exception)
    assert 2 <= attempts < 51  # the time bound, not max_retries, stopped it
    assert len(lines) == attempts - 1
    # The computed budget, every attempt's timeout plus every logged wait, and the measured
    # time both stay within the documented worst case.
    budget = attempts * extras["timeout"] + sum(line["wait"] for line in lines)
    assert budget <= worst_case_seconds(extras)
    seconds = export_seconds(run, first_request_at(emu, run))
    assert seconds <= worst_case_seconds(extras)
    record("bounds", {"case": "stall on every attempt, max_retries 50, max_elapsed 2 s",
                      "extras": extras, "waits": [line["wait"] for line in lines],
                      "seconds": round(seconds, 2), "run_seconds": round(elapsed, 2),
                      "bound": worst_case_seconds(extras), "requests": attempts})  # fmt: skip


def test_a_drip_is_stopped_by_max_elapsed(run_dag, rel_conn, emu, recorder, tmp_path, capfd):
    """Bytes keep coming, slower than useful: no read times out, the total bound ends it."""
    extras = {**FAST_EXTRAS, "timeout": 1, "max_elapsed": 1}
    rel_conn.set(**extras)
    emu.set_faults(Faults(script=[Fault.drip(8, 0.05)]))
    state, run = export(run_dag, recorder, tmp_path, "bounded_drip")
    assert state == "failed"
    assert "max_elapsed" in str(run.exception)
    assert requests_served(emu, 1) == 1  # no attempt starts after the deadline
    seconds = export_seconds(run, first_request_at(emu, run))
    assert extras["max_elapsed"] <= run.seconds  # it was cut, not refused
    assert seconds <= worst_case_seconds(extras)
    record("bounds", {"case": "drip of 8 B every 50 ms, max_elapsed 1 s", "extras": extras,
                      "waits": [], "seconds": round(seconds, 2),
                      "bound": worst_case_seconds(extras), "requests": 1})  # fmt: skip


def test_an_error_body_that_drips_cannot_outlive_the_bound(
    run_dag, rel_conn, tiny_server, recorder, tmp_path
):
    """A 500 whose 2 KiB JSON body arrives a byte every 50 ms (a broken proxy): reading its
    excerpt for the error message must not hold the export past its bound (it used to:
    ``raw.read(2048)`` waits for every byte, ~100 s here, unbounded in general). The excerpt
    is read under the attempt's deadline like any body: at ``max_elapsed`` the attempt ends."""
    from .tiny_server import Reply

    extras = {**FAST_EXTRAS, "max_retries": 0, "timeout": 0.3, "max_elapsed": 1}
    rel_conn.set(**extras)
    body = b'{"status": "error", "message": "' + b"x" * 2000 + b'"}'
    tiny_server.reply = Reply(body, "application/json", status=500, drip_s=0.05)
    state, run = export(run_dag, recorder, tmp_path, "bounded_dripping_error")
    assert state == "failed"
    assert "exceeded its time bound (max_elapsed=1 s)" in str(run.exception)
    assert tiny_server.hits == 1
    seconds = export_seconds(run, tiny_server.requests_to(REPORTS_PATH)[0].at)
    assert extras["max_elapsed"] <= run.seconds  # it was cut, not refused
    assert seconds <= worst_case_seconds(extras)
    case = "500 whose error body drips 1 B every 50 ms, max_elapsed 1 s"
    record("bounds", {"case": case, "extras": extras, "waits": [],
                      "seconds": round(seconds, 2), "bound": worst_case_seconds(extras),
                      "requests": tiny_server.hits})  # fmt: skip
