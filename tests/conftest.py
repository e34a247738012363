"""Test-wide setup and the fixtures every test module may use.

Environment (set here, before anything imports Airflow): a throwaway ``AIRFLOW_HOME`` with a
SQLite metadata DB, unit-test mode, no examples, and dummy AWS credentials that can never
reach real AWS.

Fixtures (all documented below; import nothing, just name them in a test's arguments):

* ``airflow_db`` (session): a fresh metadata DB, reset once per pytest process.
* ``sei_emulator``: the in-process SEI emulator (one server per session on a free port on
  127.0.0.1), reset to no faults and no recorded requests before each test.
* ``sei_conn``: points ``harness_sei_default`` at the emulator through
  ``AIRFLOW_CONN_HARNESS_SEI_DEFAULT``;
  ``sei_conn.set(**extras)`` re-points it with connection extras (e.g. ``max_retries=0``).
* ``v2_extras`` / ``v2_conn``: the V2 scope (project and org identifiers) with quick retries
  as connection extras, and ``harness_sei_default`` at the emulator with them; the emulator's
  export jobs then complete on their second poll.
* ``s3_server`` (session) / ``s3``: a real S3 endpoint (moto server mode) on 127.0.0.1, and
  per test an ``aws_default`` connection to it and a fresh bucket (``s3.bucket``).
* ``run_dag``: ``run_dag(dag, logical_date=..., run_after=...)`` serializes a DAG built in a
  test and runs it with ``dag.test()``, returning the DagRun; ``run_dag.states(dag_run)`` and
  ``run_dag.xcom(dag_run, task_id, map_index=-1)`` read the outcome. Needs no DAG file.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# Before anything imports Airflow: it reads AIRFLOW_HOME on import and would otherwise write
# into ~/airflow. One throwaway home per pytest process.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="sei-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(_AIRFLOW_HOME, "dags"))
os.environ.setdefault(
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
)
# Never reach for real AWS: no instance metadata, dummy keys.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)

SEI_CONN_ENV = "AIRFLOW_CONN_HARNESS_SEI_DEFAULT"
AWS_CONN_ENV = "AIRFLOW_CONN_AWS_DEFAULT"


# -- the metadata DB and DAG runs -----------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A fresh SQLite metadata DB for this pytest process (reset once, ~3 s)."""
    from airflow.utils import db

    db.resetdb()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def dagbag_api() -> tuple[Any, Any]:
    """``(DagBag, sync_bag_to_db)``: in ``airflow.dag_processing.dagbag`` since Airflow 3.2,
    in ``airflow.models.dagbag`` on 3.1 (same signatures for what the tests use)."""
    try:
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]
    return DagBag, sync_bag_to_db


class DagRunner:
    """Runs DAGs built inside tests for real, with ``dag.test()``; see the ``run_dag`` fixture."""

    def __call__(
        self, dag: Any, logical_date: Any = None, *, run_after: Any = None, **kwargs: Any
    ) -> Any:
        """Serialize ``dag`` (no DAG file holds it) and run it; return the finished DagRun.

        :param logical_date: the run's logical date. None (the default) means a run without
            one, like an asset-triggered run: ``run_after`` (default: now) then drives it.
        """
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBag, sync_bag_to_db = dagbag_api()
        DagBundlesManager().sync_bundles_to_db()
        bag = DagBag(collect_dags=False)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
        return dag.test(logical_date=logical_date, run_after=run_after, **kwargs)

    @staticmethod
    def states(dag_run: Any) -> dict[str, str]:
        """``{task_id: state}`` of a finished run; mapped tasks as ``task_id[map_index]``."""
        states = {}
        for ti in dag_run.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[key] = str(getattr(ti.state, "value", ti.state))
        return states

    @staticmethod
    def xcom(dag_run: Any, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        """A task's XCom value (its return value by default) from a finished run, or None."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(
                run_id=dag_run.run_id,
                dag_ids=dag_run.dag_id,
                task_ids=task_id,
                map_indexes=map_index,
                key=key,
            )
            row = session.scalars(query).first()
            return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture
def run_dag(airflow_db: str) -> DagRunner:
    """``run_dag(dag, logical_date=...)`` runs a test-built DAG for real and returns the DagRun;
    ``run_dag.states(dr)`` and ``run_dag.xcom(dr, task_id)`` read the outcome."""
    return DagRunner()


# -- the SEI emulator and connection --------------------------------------------------------


@pytest.fixture(scope="session")
def _sei_emulator_server() -> Iterator[Any]:
    from sei_emulator import SEIEmulator

    emulator = SEIEmulator(port=0).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def sei_emulator(_sei_emulator_server: Any) -> Iterator[Any]:
    """The session's emulator with no faults and an empty request log."""
    from sei_emulator import Faults

    _sei_emulator_server.set_faults(Faults())
    _sei_emulator_server.reset()
    yield _sei_emulator_server
    _sei_emulator_server.set_faults(Faults())


@dataclass
class SEIConnection:
    """The ``harness_sei_default`` connection as an env var; ``set(**extras)`` changes extras.

    ``defaults`` are the extras every ``set()`` starts from; an extra set to None is left out.
    """

    base_url: str
    api_key: str
    defaults: dict[str, Any] = field(default_factory=dict)
    conn_id: str = "harness_sei_default"
    extra: dict[str, Any] = field(default_factory=dict)

    def set(self, **extra: Any) -> SEIConnection:
        merged = {**self.defaults, **extra}
        self.extra = {key: value for key, value in merged.items() if value is not None}
        os.environ[SEI_CONN_ENV] = json.dumps(
            {
                "conn_type": "harness_sei",
                "host": self.base_url,
                "password": self.api_key,
                "extra": self.extra,
            }
        )
        return self


@pytest.fixture
def make_sei_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SEIConnection]:
    """``make_sei_conn(base_url, api_key, **extras)`` points ``harness_sei_default`` at a server."""
    monkeypatch.delenv(SEI_CONN_ENV, raising=False)  # restored after the test

    def make(base_url: str, api_key: str, **defaults: Any) -> SEIConnection:
        return SEIConnection(base_url=base_url, api_key=api_key, defaults=defaults).set()

    return make


@pytest.fixture
def sei_conn(sei_emulator: Any, make_sei_conn: Callable[..., SEIConnection]) -> SEIConnection:
    """``harness_sei_default`` pointing at the emulator, with no extras (the hook's defaults)."""
    return make_sei_conn(sei_emulator.base_url, _emulator_key(sei_emulator))


@pytest.fixture
def v2_extras() -> dict[str, Any]:
    """The V2 scope every V2 call needs, and quick retries: one, after at most 1 s."""
    return {
        "project_identifier": "proj-sei",
        "org_identifier": "org-sei",
        "backoff_initial": 0.01,
        "backoff_max": 1,
        "max_retries": 1,
    }


@pytest.fixture
def v2_conn(
    sei_emulator: Any, make_sei_conn: Callable[..., SEIConnection], v2_extras: dict[str, Any]
) -> SEIConnection:
    """``harness_sei_default`` at the emulator with ``v2_extras``; jobs complete on poll 2."""
    from sei_emulator import V2Settings

    sei_emulator.set_v2(V2Settings(complete_after_polls=2))
    return make_sei_conn(sei_emulator.base_url, _emulator_key(sei_emulator), **v2_extras)


def _emulator_key(emulator: Any) -> str:
    return getattr(emulator, "api_key", "sei-emulator-key")


# -- S3 through moto's server mode ----------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 endpoint (moto server mode) on 127.0.0.1; yields its URL.

    moto's in-process ``mock_aws()`` does not work with s3fs (aiobotocore): a real endpoint does.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class S3Bucket:
    """A fresh bucket on the moto server and the connection that reaches it."""

    endpoint_url: str
    bucket: str
    conn_id: str = "aws_default"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def uploads(self) -> list[str]:
        """Keys of multipart uploads still open (an aborted export must leave none)."""
        listing = self.client().list_multipart_uploads(Bucket=self.bucket)
        return [upload["Key"] for upload in listing.get("Uploads", [])]


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """``aws_default`` pointing at the moto server, and a new empty bucket for this test."""
    monkeypatch.setenv(
        AWS_CONN_ENV,
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"},
            }
        ),
    )
    _forget_cached_filesystems()
    bucket = S3Bucket(endpoint_url=s3_server, bucket=f"sei-{uuid.uuid4().hex[:12]}")
    bucket.client().create_bucket(Bucket=bucket.bucket)
    return bucket


def _forget_cached_filesystems() -> None:
    """Drop fsspec's cached S3 filesystems, so a new connection is read (and no stale loop)."""
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
    except ImportError:
        pass
