"""Every operator survives the copies Airflow makes of it, before and after its hook exists.

Airflow deep-copies tasks (``dag.partial_subset``, used by clearing and by ``dags test``),
shallow-copies one before running it (``prepare_for_execution``), pickles it, and stores DAGs
serialized. A hook holds a session, a ``threading.Event`` and maybe a rate limiter with a lock:
none of that may be deep-copied (a lock cannot be), and a copy must not share the original's
cancel event. So ``__init__`` only stores arguments, and a copy starts without a hook.
"""

from __future__ import annotations

import copy
import json
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from airflow.sdk import DAG, Asset, ObjectStoragePath

from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.operators.exports import SEIExportOperator
from airflow_provider_sei.operators.fanout import SEIMultiTeamReportOperator
from airflow_provider_sei.operators.reports import (
    SEIContributorReportOperator,
    SEITeamReportOperator,
)

try:  # Airflow 3.3
    from airflow.serialization.serialized_objects import DagSerialization as Serializer
except ImportError:  # Airflow 3.1
    from airflow.serialization.serialized_objects import (  # type: ignore[no-redef]
        SerializedDAG as Serializer,
    )

START = pendulum.datetime(2024, 1, 1, tz="UTC")
WEEK = {
    "data_interval_start": pendulum.datetime(2024, 1, 1, tz="UTC"),
    "data_interval_end": pendulum.datetime(2024, 1, 8, tz="UTC"),
}
#: Types that are runtime state: none may be built by __init__, or copied deep.
RUNTIME_TYPES = (
    type(threading.Event()),
    type(threading.Lock()),
    type(threading.RLock()),
    requests.Session,
    SEIHook,
)


def build_operators(tmp_path: Path) -> dict[str, Any]:
    """One DAG with every operator, plain and mapped; returns ``{task_id: task}``."""
    with DAG("copies", schedule=None, start_date=START) as dag:
        SEITeamReportOperator(
            task_id="team",
            collection_id="{{ params.team }}",
            destination=f"file://{tmp_path}/{{{{ sei.collection_id }}}}/"
            "{{ sei.date_start }}.csv",
            params={"team": "123"},
        )
        SEIContributorReportOperator(
            task_id="contributor",
            collection_id=1,
            destination=ObjectStoragePath(f"file://{tmp_path}/contributors.csv"),
            add_columns=["date_start", "run_id"],
        )
        SEIMultiTeamReportOperator(
            task_id="fanout",
            team_ref_ids=[123, 456],
            destination=f"file://{tmp_path}/teams/{{{{ sei.date_end }}}}/",
            requests_per_minute=60,  # the hook then holds a rate limiter (and its lock)
        )
        SEIExportOperator(
            task_id="export",
            export_type="efficiency",
            team_id="123",
            destination=Asset(f"file://{tmp_path}/exports/efficiency.csv"),
        )
        SEITeamReportOperator.partial(
            task_id="team_mapped", destination=f"file://{tmp_path}/mapped/"
        ).expand(collection_id=["1", "123"])
        SEIContributorReportOperator.partial(
            task_id="contributor_mapped", destination=f"file://{tmp_path}/mapped/"
        ).expand(collection_id=["1", "123"])
        SEIMultiTeamReportOperator.partial(
            task_id="fanout_mapped", merged_destination=f"file://{tmp_path}/chunk.csv"
        ).expand(team_ref_ids=[[123], [456, 789]])
        SEIExportOperator.partial(
            task_id="export_mapped", export_type="productivity", destination=f"file://{tmp_path}/"
        ).expand(team_id=["1", "123"])
    return dag.task_dict


PLAIN = ["team", "contributor", "fanout", "export"]
MAPPED = ["team_mapped", "contributor_mapped", "fanout_mapped", "export_mapped"]
MAPPED_KWARGS = {
    "team_mapped": {"collection_id": "123"},
    "contributor_mapped": {"collection_id": "1"},
    "fanout_mapped": {"team_ref_ids": [456, 789]},
    "export_mapped": {"team_id": "1"},
}


@pytest.fixture
def tasks(tmp_path: Path) -> dict[str, Any]:
    return build_operators(tmp_path)


def runtime_state(obj: Any) -> list[str]:
    """Names of ``obj``'s attributes (one level into containers) holding runtime state."""
    found = []
    for name, value in vars(obj).items():
        values = value.values() if isinstance(value, dict) else [value]
        values = [v for item in values for v in (item if isinstance(item, list) else [item])]
        if any(isinstance(v, RUNTIME_TYPES) for v in values):
            found.append(name)
    return found


def make_hooks(tasks: dict[str, Any]) -> dict[str, SEIHook]:
    """Build the hook of every plain operator, as a running task would."""
    return {task_id: tasks[task_id].hook for task_id in PLAIN}


def fields(task: Any) -> dict[str, Any]:
    return {name: getattr(task, name) for name in task.template_fields}


# -- __init__ ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", PLAIN)
def test_init_creates_no_runtime_state(tasks, task_id):
    assert runtime_state(tasks[task_id]) == []


@pytest.mark.parametrize("task_id", MAPPED)
def test_unmapping_creates_no_runtime_state(tasks, task_id):
    unmapped = tasks[task_id].unmap(MAPPED_KWARGS[task_id])
    assert runtime_state(unmapped) == []


def test_the_hooks_really_hold_what_cannot_be_deep_copied(tasks):
    hooks = make_hooks(tasks)
    assert isinstance(hooks["fanout"].cancel, RUNTIME_TYPES)
    assert hooks["fanout"].rate_limiter is not None
    with pytest.raises(TypeError):  # why the operators must never deep-copy their hook
        copy.deepcopy(hooks["fanout"])
    assert [runtime_state(tasks[t]) for t in PLAIN] == [["hook"]] * 4


# -- copy.deepcopy, copy.copy, pickle ------------------------------------------------------------


@pytest.mark.parametrize("task_id", PLAIN)
@pytest.mark.parametrize("with_hook", [False, True], ids=["before-hook", "after-hook"])
def test_deepcopy(tasks, task_id, with_hook):
    original = tasks[task_id]
    if with_hook:
        hook = original.hook
    twin = copy.deepcopy(original)
    assert twin is not original
    assert type(twin) is type(original)
    assert fields(twin) == fields(original)
    assert "hook" not in vars(twin)  # a copy builds its own
    assert twin.hook is not getattr(original, "__dict__", {}).get("hook")
    if with_hook:
        assert original.hook is hook  # the original keeps its own
        original.on_kill()
        assert hook.cancel.is_set()
        assert not twin.hook.cancel.is_set()  # killing one task never cancels its copy


@pytest.mark.parametrize("task_id", PLAIN)
def test_shallow_copy_and_pickle_drop_the_hook(tasks, task_id):
    original = tasks[task_id]
    original.hook  # noqa: B018 - build it
    for twin in (copy.copy(original), pickle.loads(pickle.dumps(original))):
        assert fields(twin) == fields(original)
        assert "hook" not in vars(twin)
        assert isinstance(twin.hook, SEIHook)
    assert "hook" in vars(original)


@pytest.mark.parametrize("task_id", MAPPED)
def test_deepcopy_of_mapped_tasks_and_of_their_unmapped_task_with_a_hook(tasks, task_id):
    mapped = tasks[task_id]
    make_hooks(tasks)  # the plain tasks of the same DAG hold hooks
    twin = copy.deepcopy(mapped)
    assert twin.partial_kwargs == mapped.partial_kwargs
    assert twin.task_id == task_id
    unmapped = mapped.unmap(MAPPED_KWARGS[task_id])
    hook = unmapped.hook
    unmapped_twin = copy.deepcopy(unmapped)
    assert fields(unmapped_twin) == fields(unmapped)
    assert "hook" not in vars(unmapped_twin)
    assert unmapped.hook is hook


# -- dag.partial_subset --------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", PLAIN + MAPPED)
def test_partial_subset_after_the_hooks_exist(tasks, task_id):
    hooks = make_hooks(tasks)
    dag = tasks[task_id].dag
    subset = dag.partial_subset(task_ids=[task_id], include_upstream=False)
    (copied,) = subset.tasks
    assert copied.task_id == task_id
    assert copied is not tasks[task_id]
    assert "hook" not in vars(copied)
    assert {t: tasks[t].hook for t in PLAIN} == hooks  # the originals keep theirs


@pytest.mark.parametrize("task_id", ["team", "fanout"])
def test_a_copied_task_renders_the_sei_namespace_on_its_own(tasks, task_id, tmp_path):
    make_hooks(tasks)
    subset = tasks[task_id].dag.partial_subset(task_ids=[task_id], include_upstream=False)
    (copied,) = subset.tasks
    context: dict[str, Any] = {"dag": subset, "params": copied.params, **WEEK}
    copied.render_template_fields(context)
    if task_id == "team":
        assert copied.destination == f"file://{tmp_path}/123/2024-01-01.csv"
    else:
        assert copied.destination == f"file://{tmp_path}/teams/2024-01-07/"
    # the original's templates are untouched
    assert "{{ sei." in tasks[task_id].destination


# -- DAG serialization ---------------------------------------------------------------------------


def round_trip(dag: Any) -> Any:
    data = Serializer.to_dict(dag)
    text = json.dumps(data)
    return Serializer.from_dict(json.loads(text)), text


def test_serialization_round_trip_after_the_hooks_exist(tasks):
    make_hooks(tasks)
    dag = tasks["team"].dag
    again, text = round_trip(dag)
    assert sorted(again.task_dict) == sorted(PLAIN + MAPPED)
    assert '"hook"' not in text
    for task_id in PLAIN:
        restored, original = again.task_dict[task_id], tasks[task_id]
        assert list(restored.template_fields) == list(original.template_fields)
        for name in original.template_fields:
            assert getattr(restored, name) == getattr(original, name), (task_id, name)
    # the Asset destination is an outlet of the stored DAG too
    assert [o.uri for o in again.task_dict["export"].outlets] == [tasks["export"].destination]


@pytest.mark.parametrize("task_id", MAPPED)
def test_serialization_of_mapped_tasks(tasks, task_id):
    make_hooks(tasks)
    again, _ = round_trip(tasks[task_id].dag)
    restored = again.task_dict[task_id]
    assert restored.is_mapped
    assert list(restored.template_fields) == list(tasks[task_id].template_fields)
    expand = getattr(restored, "expand_input", None)
    assert expand is not None
    (name,) = MAPPED_KWARGS[task_id]
    assert name in expand.value


def test_serialization_does_not_hold_the_connections_secrets(tasks, sei_conn):
    for task_id in PLAIN:
        tasks[task_id].hook.settings  # noqa: B018 - the connection read, its key in memory
    _, text = round_trip(tasks["team"].dag)
    assert sei_conn.api_key not in text


# -- copies of a whole DAG ----------------------------------------------------------------------


@pytest.mark.parametrize("make", [copy.deepcopy, copy.copy], ids=["deepcopy", "copy"])
def test_the_whole_dag_copies_after_the_hooks_exist(tasks, make: Callable[[Any], Any]):
    make_hooks(tasks)
    dag = tasks["team"].dag
    twin = make(dag)
    assert sorted(twin.task_dict) == sorted(dag.task_dict)
