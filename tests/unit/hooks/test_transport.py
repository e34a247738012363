"""The transport: one wall-clock bound per call, headers included; 1xx skipped; the rate limit.

Timing is measured with ``time.monotonic()`` and bounded from both sides; nothing sleeps to
wait for something to happen. The servers drip one byte every 0.2 s, well inside the read
timeout, so only the call's deadline can stop them.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from hostile import Drip, Hold, csv, head, json_response, response

from airflow_provider_sei.exceptions import SEIConnectionError, SEITimeoutError
from airflow_provider_sei.hooks.ratelimit import RateLimiter
from airflow_provider_sei.hooks.retry import RetryPolicy
from airflow_provider_sei.hooks.sei import SEIHook
from airflow_provider_sei.hooks.transport import Deadline, SEIAdapter, deadline, now
from airflow_provider_sei.metrics import ExportType
from airflow_provider_sei.models import ExportJob

from .support import ROWS, team_request, temp_files

MAX_ELAPSED = 1.5
READ_TIMEOUT = 1.0
DRIP = (1, 0.2)  # a byte every 0.2 s: never a read timeout
HEADERS = head(200, {"Content-Type": "text/csv", "Content-Length": len(ROWS), "X-Pad": "p" * 400})


@pytest.fixture
def bounded(server, make_conn):
    """A hook whose calls are bounded by MAX_ELAPSED, with quick retries."""

    def make(read_timeout: float = READ_TIMEOUT, **extras: object) -> SEIHook:
        policy = RetryPolicy(max_retries=5, backoff_initial=0.01, jitter=0, max_elapsed=MAX_ELAPSED)
        conn_id = make_conn(host=server.url, project_identifier="p", org_identifier="o", **extras)
        return SEIHook(conn_id, retry_policy=policy, timeout=read_timeout)

    return make


def timed(fn, *args, **kwargs):
    """Run ``fn`` expecting ``SEITimeoutError``; return the error and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(SEITimeoutError) as info:
        fn(*args, **kwargs)
    return info.value, time.monotonic() - started


def assert_cut_at_the_deadline(elapsed: float, read_timeout: float = READ_TIMEOUT) -> None:
    assert MAX_ELAPSED <= elapsed < MAX_ELAPSED + read_timeout, elapsed


# -- one deadline per call, headers included ---------------------------------------------------


def test_a_status_line_and_headers_dripped_forever_are_cut_at_max_elapsed(
    server, bounded, tmp_path
):
    server.script([Drip(HEADERS, *DRIP)])  # ~100 s of headers
    error, elapsed = timed(bounded().download_report, team_request(), tmp_path / "r.csv")

    assert_cut_at_the_deadline(elapsed)
    assert "max_elapsed=1.5" in str(error)
    assert server.hits == 1  # no attempt starts after the deadline
    assert list(tmp_path.iterdir()) == []


def test_interim_responses_dripped_forever_are_cut_at_max_elapsed(server, bounded, tmp_path):
    early_hints = [(103, {"Link": "</a.css>; rel=preload"})] * 50
    reply = response(
        200, {"Content-Type": "text/csv"}, ROWS, interim=early_hints, drip_headers=DRIP
    )
    server.script(reply)
    _, elapsed = timed(bounded().download_report, team_request(), tmp_path / "r.csv")
    assert_cut_at_the_deadline(elapsed)
    assert server.hits == 1


def test_a_body_dripped_forever_is_cut_at_max_elapsed_and_never_published(
    server, bounded, tmp_path
):
    target = tmp_path / "r.csv"
    target.write_bytes(b"the previous good report\n")
    server.script(response(200, {"Content-Type": "text/csv"}, ROWS, drip_body=(64, 0.2)))
    _, elapsed = timed(bounded().download_report, team_request(), target)

    assert_cut_at_the_deadline(elapsed)
    assert server.hits == 1
    assert target.read_bytes() == b"the previous good report\n"
    assert temp_files(tmp_path) == []


def test_a_server_that_holds_before_any_byte_is_cut_at_max_elapsed(server, bounded, tmp_path):
    """The read timeout (5 s) is longer than the call's bound: the bound wins."""
    server.script([Hold()])
    _, elapsed = timed(bounded(read_timeout=5.0).download_report, team_request(), tmp_path / "x")
    assert_cut_at_the_deadline(elapsed)
    assert server.hits == 1


def test_read_timeouts_are_retried_until_the_bound_which_is_reported_as_such(
    server, bounded, tmp_path
):
    """The last attempt's socket timeout is clipped to the deadline: still a timeout of the
    call, not "the server sent nothing for 0.4 s"."""
    server.default = [Hold()]
    error, elapsed = timed(
        bounded(read_timeout=0.4).download_report, team_request(), tmp_path / "x"
    )

    assert_cut_at_the_deadline(elapsed, read_timeout=0.4)
    assert "max_elapsed" in str(error)
    assert 3 <= server.hits <= 4  # 0.4 s each, 1.5 s in all


def test_a_socket_timeout_that_beats_the_deadline_timer_is_still_the_time_bound(
    server, bounded, tmp_path, monkeypatch
):
    """The socket timeout is clipped to the time left, so it fires at the deadline too; when
    it wins the race against the timer thread (a loaded machine), the call's bound is what
    ran out -- not "the server sent nothing for 5 s"."""
    from airflow_provider_sei.hooks import transport

    monkeypatch.setattr(transport.Deadline, "_expire", lambda self: None)  # the timer is late
    server.default = [Hold()]
    error, elapsed = timed(
        bounded(read_timeout=5.0).download_report, team_request(), tmp_path / "x"
    )
    assert "max_elapsed=1.5" in str(error)
    assert_cut_at_the_deadline(elapsed)
    assert server.hits == 1


def test_a_dripping_export_status_is_cut_at_max_elapsed(server, bounded):
    job = ExportJob("exp_1", ExportType.EFFICIENCY)
    path = "/v2/insights/efficiency/exports/exp_1"
    server.route(path, json_response({"exportId": "exp_1", "status": "QUEUED"}, drip_body=DRIP))
    _, elapsed = timed(bounded().get_export, job)
    assert_cut_at_the_deadline(elapsed)
    assert len(server.requests_to(path)) == 1


def test_a_dripping_org_tree_listing_is_cut_at_max_elapsed(server, bounded):
    server.script(json_response([{"refId": 1, "name": "Root"}] * 100, drip_headers=DRIP))
    _, elapsed = timed(bounded().list_org_tree_teams, 1)
    assert_cut_at_the_deadline(elapsed)
    assert server.hits == 1


def test_a_kept_alive_connection_is_bounded_too(server, bounded, tmp_path):
    hook = bounded()
    server.script(csv(ROWS), [Drip(HEADERS, *DRIP)])
    hook.download_report(team_request(), tmp_path / "first.csv")
    _, elapsed = timed(hook.download_report, team_request(), tmp_path / "second.csv")

    assert_cut_at_the_deadline(elapsed)
    first, second = server.requests
    assert second.connection == first.connection  # the socket was reused, and still watched


def test_each_call_gets_its_own_bound(server, bounded, tmp_path):
    """A hook that has run for longer than max_elapsed in all is not out of time."""
    hook = bounded()
    started = time.monotonic()
    server.default = response(
        200, {"Content-Type": "text/csv"}, ROWS, drip_body=(len(ROWS) // 4, 0.2)
    )
    for n in range(3):
        hook.download_report(team_request(), tmp_path / f"{n}.csv")  # ~0.6 s each
    assert time.monotonic() - started > MAX_ELAPSED
    assert server.hits == 3


class BlockingFile:
    """A destination whose writes wait for ``release``: an attempt still busy writing."""

    def __init__(self) -> None:
        self.writing = threading.Event()
        self.release = threading.Event()
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.writing.set()
        self.release.wait(10)
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


def test_a_deadline_leaves_alone_a_connection_another_thread_took_from_the_pool(server, make_conn):
    """Thread A has read its report (its connection went back to the pool) and is still
    writing when its deadline passes; thread B is reading a slow answer on that very
    connection: B's request must not be cut by A's deadline."""
    policy = RetryPolicy(max_retries=2, backoff_initial=0.01, max_elapsed=2.0)
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, pool_maxsize=1, timeout=5)
    slow_trees = json_response(
        [{"id": n, "name": "x" * 50} for n in range(40)], drip_body=(160, 0.1)
    )
    server.route("/v2/org-trees", slow_trees)  # ~1.5 s of body
    destination = BlockingFile()
    outcome: dict[str, object] = {}

    def a() -> None:
        outcome["a"] = hook.download_report(team_request(), destination)

    def b() -> None:
        try:
            outcome["b"] = hook.list_org_trees()
        except Exception as exc:  # reported below
            outcome["b"] = exc

    thread_a = threading.Thread(target=a)
    started = time.monotonic()
    thread_a.start()
    assert destination.writing.wait(5)  # A read its report; it waits to write it
    thread_b = threading.Timer(1.0, b)  # B's answer is still dripping when A's bound passes
    thread_b.start()
    thread_b.join(10)
    destination.release.set()
    thread_a.join(10)

    assert time.monotonic() - started > 2.0  # A's deadline did pass while B was reading
    assert isinstance(outcome["b"], list), outcome["b"]
    assert len(server.requests_to("/v2/org-trees")) == 1  # B was not cut and retried
    first, second = server.requests
    assert second.connection == first.connection  # B did use A's connection
    assert bytes(destination.data).startswith(b"Collection Name,value")


# -- Deadline and deadline() on their own ------------------------------------------------------


def test_a_deadline_shuts_its_sockets_down_when_it_passes():
    left, right = socket.socketpair()
    with left, right:
        started = now()
        watch = Deadline(started + 0.3)
        watch.watch(left)
        assert left.recv(1) == b""  # blocked until the shutdown: end of file
        elapsed = now() - started
        assert watch.expired
        assert 0.3 <= elapsed < 1.0
        assert watch.remaining() == 0.0


def test_a_socket_watched_after_the_deadline_is_shut_at_once():
    left, right = socket.socketpair()
    with left, right:
        watch = Deadline(now())
        started = now()
        while not watch.expired and now() - started < 2:  # the timer thread runs at once
            threading.Event().wait(0.01)
        watch.watch(left)
        assert left.recv(1) == b""


def test_a_cancelled_deadline_leaves_its_sockets_alone():
    left, right = socket.socketpair()
    with left, right:
        watch = Deadline(now() + 0.1)
        watch.watch(left)
        watch.cancel()
        left.settimeout(0.4)
        with pytest.raises(TimeoutError):
            left.recv(1)  # nothing shut it down
        assert not watch.expired


def test_deadline_blocks_nest_and_restore_the_outer_one():
    from airflow_provider_sei.hooks import transport

    with deadline(now() + 60) as outer:
        with deadline(now() + 30) as inner:
            assert transport._current() is inner
        assert transport._current() is outer
    assert transport._current() is None


# -- interim (1xx) responses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "interim",
    [
        [(103, {"Link": "</style.css>; rel=preload; as=style"})],
        [(100, {})],
        [(100, {}), (102, {}), (103, {"Link": "</a.js>; rel=preload"}), (103, {})],
    ],
    ids=["103 Early Hints", "100 Continue", "several"],
)
def test_interim_responses_before_the_report_are_skipped(server, bounded, tmp_path, interim):
    reply = response(
        200,
        {"Content-Type": "text/csv", "Content-Disposition": 'attachment; filename="r.csv"'},
        ROWS,
        interim=interim,
    )
    server.script(reply)
    result = bounded().download_report(team_request(), tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_bytes() == ROWS
    assert (result.rows, result.attempts) == (ROWS.count(b"\n") - 1, 1)


def test_interim_responses_before_a_json_answer_are_skipped(server, bounded):
    reply = json_response([{"id": 1, "name": "Root"}], interim=[(103, {"Link": "</x>"})])
    server.script(reply)
    assert bounded().list_org_trees() == [{"id": 1, "name": "Root"}]


def test_interim_responses_before_an_error_status_are_skipped(server, bounded, tmp_path):
    from airflow_provider_sei.exceptions import SEIAPIError

    server.script(response(404, {"Content-Type": "application/json"}, b'{"message": "nope"}',
                           interim=[(103, {})]))  # fmt: skip
    with pytest.raises(SEIAPIError) as info:
        bounded().download_report(team_request(), tmp_path / "r.csv")
    assert (info.value.status_code, server.hits) == (404, 1)


# -- the adapter pays the rate limiter ---------------------------------------------------------


class Recorder(RateLimiter):
    """A limiter on a fake clock that records every grant and every 429 it is told of."""

    def __init__(self, rpm: float) -> None:
        self.clock = 0.0
        super().__init__(rpm, slack=0, clock=lambda: self.clock, sleep=self._sleep)
        self.grants: list[float] = []
        self.retry_afters: list[float | None] = []

    def _sleep(self, seconds: float, cancel: threading.Event | None) -> bool:
        self.clock += seconds
        return False

    def acquire(
        self, cancel: threading.Event | None = None, max_wait: float | None = None
    ) -> float:
        self.grants.append(super().acquire(cancel, max_wait))
        return self.grants[-1]

    def on_throttled(self, retry_after: float | None = None) -> None:
        self.retry_afters.append(retry_after)
        super().on_throttled(retry_after)


def test_every_request_pays_the_limiter_retries_included(server, make_conn, tmp_path):
    limiter = Recorder(60)
    policy = RetryPolicy(max_retries=3, backoff_initial=0.01, sleep=lambda s: None)
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, rate_limiter=limiter)
    server.script(
        response(429, {"Retry-After": "7"}, b""),
        response(503, {}, b"busy"),
        csv(ROWS),
    )
    hook.download_report(team_request(), tmp_path / "r.csv")

    assert server.hits == 3
    # The 429's Retry-After held the next request; the halved rate (30/min) spaces the third.
    assert limiter.grants == pytest.approx([0.0, 7.0, 9.0])
    assert limiter.retry_afters == [7.0]
    assert limiter.throttled == 1


def test_the_adapter_never_retries_on_its_own(server, make_conn):
    hook = SEIHook(make_conn(host=server.url))
    adapter = hook.get_conn().get_adapter(server.url)
    assert isinstance(adapter, SEIAdapter)
    assert adapter.max_retries.total == 0


def test_cancel_stops_a_request_waiting_for_the_limiter(server, make_conn, tmp_path):
    hook = SEIHook(make_conn(host=server.url), requests_per_minute=1)
    hook.download_report(team_request(), tmp_path / "first.csv")  # takes the minute's slot
    threading.Timer(0.2, hook.cancel.set).start()
    started = time.monotonic()
    with pytest.raises(InterruptedError):
        hook.download_report(team_request(), tmp_path / "second.csv")
    assert 0.2 <= time.monotonic() - started < 2.0  # not the 61 s the slot was booked for
    assert server.hits == 1


def test_a_refused_connection_is_retried_and_reported_plainly(make_conn, closed_port):
    policy = RetryPolicy(max_retries=2, backoff_initial=0.01, sleep=lambda s: None)
    hook = SEIHook(make_conn(host=f"http://127.0.0.1:{closed_port}"), retry_policy=policy)
    with pytest.raises(SEIConnectionError, match=f"127.0.0.1:{closed_port}"):
        hook.list_org_trees()


def test_a_limiter_slot_beyond_the_time_bound_is_a_timeout_at_once(server, make_conn, tmp_path):
    policy = RetryPolicy(max_retries=3, backoff_initial=0.01, max_elapsed=MAX_ELAPSED)
    hook = SEIHook(make_conn(host=server.url), retry_policy=policy, requests_per_minute=1)
    hook.download_report(team_request(), tmp_path / "first.csv")  # takes the minute's slot
    started = time.monotonic()
    with pytest.raises(SEITimeoutError, match="rate limiter"):
        hook.download_report(team_request(), tmp_path / "second.csv")
    assert time.monotonic() - started < MAX_ELAPSED  # not the 61 s the next slot is away
    assert server.hits == 1
    assert not (tmp_path / "second.csv").exists()
