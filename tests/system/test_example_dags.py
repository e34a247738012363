"""Every example DAG parses without import errors and runs for real against the emulator."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
# Run order matters only for the consumer, which summarises the weekly team report.
DAG_IDS = [
    "sei_team_weekly",
    "sei_dora_monthly",
    "sei_contributors_weekly",
    "sei_team_fanout",
    "sei_team_report_consumer",
]
LOGICAL_DATE = pendulum.datetime(2024, 3, 4, tz="UTC")  # a Monday


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("example-out")


@pytest.fixture
def example_bag(out_dir, monkeypatch):
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    monkeypatch.setenv("SEI_EXPORT_BASE", f"file://{out_dir}")
    return DagBag(dag_folder=str(EXAMPLES))  # AIRFLOW__CORE__LOAD_EXAMPLES=False (conftest)


def test_example_dags_load_without_import_errors(example_bag):
    assert example_bag.import_errors == {}
    assert sorted(example_bag.dag_ids) == sorted(DAG_IDS)
    for dag_id in DAG_IDS:
        dag = example_bag.dags[dag_id]
        assert dag.catchup is False
        assert "sei" in dag.tags


def test_example_dags_have_interval_timetables(example_bag):
    # Each scheduled example covers a real window, not the zero-length default of cron strings.
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:  # Airflow 3.1: DAGs hold the core timetables themselves

        def coerce_to_core_timetable(timetable):
            return timetable

    for dag_id in [
        "sei_team_weekly",
        "sei_dora_monthly",
        "sei_contributors_weekly",
        "sei_team_fanout",
    ]:
        timetable = coerce_to_core_timetable(example_bag.dags[dag_id].timetable)
        interval = timetable.infer_manual_data_interval(run_after=LOGICAL_DATE)
        assert interval.end - interval.start >= pendulum.duration(days=7), dag_id


def test_example_dags_run_against_the_emulator(example_bag, out_dir, run_dag, sei_conn):
    for dag_id in DAG_IDS:
        dag_run = run_dag(example_bag.dags[dag_id], LOGICAL_DATE)
        states = run_dag.states(dag_run)
        assert states, dag_id
        assert set(states.values()) == {"success"}, (dag_id, states)

    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*.csv"))
    assert "team/2024-02-26/team_report_1_2024-02-26_2024-03-03_weekly.csv" in written
    assert "dora/2024-02/dora_median.csv" in written
    assert "dora/2024-02/dora_p90.csv" in written
    assert "contributors/2024-02-26/contributors_123.csv" in written
    fanout = [p for p in written if p.startswith("fanout/2024-02-26/")]
    assert len(fanout) == 3
    assert all(f"team_report_{t}_" in " ".join(fanout) for t in (123, 456, 789))
    assert [p for p in written if p.startswith("manifests/")]
    assert not list(out_dir.rglob("*.tmp"))
