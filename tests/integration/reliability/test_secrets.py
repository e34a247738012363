"""The API key never leaks: real DAG runs on success and on every failure path, all output scanned.

The suite's emulator accepts only ``SECRET_KEY`` (a distinctive ``pat.`` key). For each path a
real DAG run is made, then every place a key could end up is searched for the whole key and
for its secret part alone:

* what the run printed (stdout/stderr at file-descriptor level: ``dag.test()`` writes the task
  log there) and every log record of every logger at DEBUG (urllib3's connection log, the
  emulator's request log);
* every file under ``AIRFLOW_HOME/logs`` (task log files, when the runner writes them);
* the run's XCom rows and RenderedTaskInstanceFields rows, as stored;
* the whole metadata DB (every row of every table, dumped as SQL);
* the task's exception (``str`` and ``repr``), the hook's ``repr``, its settings' ``repr``
  and what the emulator recorded about each request.

Also: the hook registers the key, and the header value derived from it, with Airflow's
secrets masker (``mask_secret``), and a task that logs them anyway shows ``***``.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import DAG, BaseOperator
from sei_emulator import Fault, Faults

from airflow_provider_sei.operators.reports import SEITeamReportOperator

from .conftest import record
from .helpers import (
    LOGICAL_DATE,
    SECRET_KEY,
    SECRETS,
    START,
    TEAM_KWARGS,
    db_dump,
    log_files,
    one_task_dag,
    run_rows,
    without_mask_echo,
)

PATHS: dict[str, dict[str, Any]] = {
    "success": {"script": [], "state": "success"},
    "success-apikey-scheme": {"script": [], "state": "success",
                              "extras": {"auth_scheme": "apikey"}},
    "401": {"script": [Fault.status(401, "Invalid API key")], "state": "failed"},
    "401-apikey-scheme": {"script": [Fault.status(401)], "state": "failed",
                          "extras": {"auth_scheme": "apikey"}},
    "500-exhausted": {"script": [Fault.status(500)] * 3, "state": "failed"},
    "timeout": {"script": [Fault.stall(1.0)] * 3, "state": "failed", "extras": {"timeout": 0.3}},
    "truncated": {"script": [Fault.truncate(0.5)] * 3, "state": "failed"},
    "chunked-cut": {"script": [Fault.chunked_cut(0.5)] * 3, "state": "failed"},
    "wrong-body-html": {"script": [Fault.wrong_body("html")], "state": "failed"},
    "wrong-body-json": {"script": [Fault.wrong_body("json")], "state": "failed"},
    "reset": {"script": [Fault.reset()] * 3, "state": "failed"},
    "bad-input": {"script": [], "state": "failed", "kwargs": {"granularity": "hourly"}},
    "bad-connection": {"script": [], "state": "failed", "extras": {"auth_scheme": "bearer"}},
    "wrong-key": {"script": [], "state": "failed", "key": SECRET_KEY[:-1] + "X"},
}  # fmt: skip


def find_leaks(sinks: dict[str, str], *also: str) -> list[str]:
    """The names of the sinks holding the key, its secret part or any of ``also``."""
    secrets = (*SECRETS, *also)
    return [name for name, text in sinks.items() if any(s in text for s in secrets)]


@pytest.mark.parametrize("path", list(PATHS), ids=list(PATHS))
def test_no_leak_on_path(path, run_dag, rel_conn, emu, recorder, tmp_path, capfd, all_logs, masked):
    from airflow_provider_sei.hooks.sei import SEIHook

    spec = PATHS[path]
    if "key" in spec:
        rel_conn.api_key = spec["key"]
    rel_conn.set(**spec.get("extras", {}))
    emu.set_faults(Faults(script=list(spec["script"])))
    dag_id = "secrets_" + path.replace("-", "_")
    dag = one_task_dag(
        dag_id,
        SEITeamReportOperator,
        destination=f"file://{tmp_path}/out/team.csv",
        **{**TEAM_KWARGS, **spec.get("kwargs", {})},
    )

    dag_run = run_dag(dag, LOGICAL_DATE)

    assert run_dag.states(dag_run) == {"export": spec["state"]}
    exception = recorder.of(dag_id).exception
    out, err = capfd.readouterr()
    hook = SEIHook()
    try:
        settings_repr = repr(hook.settings)
    except Exception as exc:  # a bad connection: the error instead
        settings_repr = f"{exc!s} {exc!r}"
    out, _ = without_mask_echo(out)
    sinks = {
        "stdout (task log)": out,
        "stderr": err,
        "log records (DEBUG, urllib3 included)": "\n".join(all_logs.texts),
        "task log files": log_files(),
        "exception str/repr": f"{exception!s} {exception!r}",
        "repr(hook)": repr(hook),
        "repr(hook.settings)": settings_repr,
        "emulator request records": repr(emu.requests),
        "metadata DB dump": db_dump(),
        **{name: "\n".join(rows) for name, rows in run_rows(dag_run).items()},
    }
    leaks = find_leaks(sinks, rel_conn.api_key)
    record(
        "secrets", {"path": path, "state": spec["state"], "sinks": sorted(sinks), "leaks": leaks}
    )
    assert leaks == []
    if spec["state"] == "success":  # the run's return value and rendered fields were scanned
        rows = run_rows(dag_run)
        assert rows["xcom"]
        assert rows["rendered_fields"]
    if path.startswith(("success", "401", "500")):  # the hook read the connection
        key = rel_conn.api_key
        assert key in masked
        if rel_conn.extra.get("auth_scheme") == "apikey":
            assert f"ApiKey {key}" in masked


_MASKED_EVENTS: list[dict[str, Any]] = []


class CarelessOperator(BaseOperator):
    """A task that would log what it never should: the connection, the key, the auth headers.

    Its would-be log event goes through ``airflow.sdk.log.mask_logs``, the processor that
    masks task logs where Airflow masks them (the supervisor writing the task log file;
    ``dag.test()`` itself does not mask its in-process log output), and is kept for the test.
    """

    def execute(self, context: Any) -> None:
        from airflow.sdk.log import mask_logs

        from airflow_provider_sei.hooks.sei import SEIHook

        hook = SEIHook()
        event = {
            "event": f"key: {hook.settings.api_key}",
            "connection": repr(hook.get_connection("harness_sei_default")),
            "headers": hook.settings.auth_headers(),
        }
        _MASKED_EVENTS.append(mask_logs(None, "info", event))


def test_a_task_that_logs_the_key_gets_stars(run_dag, rel_conn, emu):
    """Even a careless task that logs the connection, the key or the session's headers gets
    ``***`` in its task log: the key and the header value are registered with the masker."""
    rel_conn.set(auth_scheme="apikey")
    with DAG("secrets_careless_task", schedule=None, start_date=START) as dag:
        CarelessOperator(task_id="careless")
    _MASKED_EVENTS.clear()

    dag_run = run_dag(dag, LOGICAL_DATE)

    assert run_dag.states(dag_run) == {"careless": "success"}
    (event,) = _MASKED_EVENTS
    assert event["event"] == "key: ***"
    assert "password='***'" in event["connection"]
    assert event["headers"]["Authorization"] in ("***", "ApiKey ***")
    assert find_leaks({"masked event": repr(event)}) == []


def test_connection_repr_is_airflows_and_shows_the_password_outside_tasks():
    """Documented, not ours to fix: Airflow's own ``Connection.__repr__`` includes the password
    in plain text. The hook never logs or formats a Connection; inside a task the masker hides
    it (previous test). ``repr(SEIHook)`` and ``repr(ConnectionSettings)`` never show it."""
    from airflow.sdk.definitions.connection import Connection

    from airflow_provider_sei.hooks.settings import ConnectionSettings

    conn = Connection(conn_id="x", conn_type="harness_sei", host="http://h", password=SECRET_KEY)
    assert SECRET_KEY in repr(conn)  # Airflow's behaviour, not the provider's
    settings = ConnectionSettings.from_connection(conn)
    assert not find_leaks({"settings": repr(settings), "str": str(settings)})
