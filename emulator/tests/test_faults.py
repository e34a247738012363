"""Every fault kind, the random rates, the rate limit and Retry-After."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from urllib.parse import urlsplit

import pytest
import requests
from emu_helpers import AUTH, KEY, REPORTS, contributor_body, post_report, team_body
from sei_emulator import Fault, Faults, SEIEmulator


def raw_post(emu: SEIEmulator, body: dict, timeout: float = 10):
    """POST with http.client: the response, or the exception, and the connection."""
    url = urlsplit(emu.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    headers = {"x-api-key": KEY, "Content-Type": "application/json"}
    conn.request("POST", f"{REPORTS}?format=csv", json.dumps(body), headers)
    return conn.getresponse(), conn


def expected_body(body: dict) -> bytes:
    with SEIEmulator(port=0) as clean:
        return post_report(clean, body).content


def test_scripted_status_then_normal(emulator):
    emulator.set_faults(Faults(script=[Fault.status(503), Fault.status(500, "boom")]))
    first, second, third = (post_report(emulator, team_body()) for _ in range(3))
    assert first.status_code == 503
    assert first.json() == {"status": "error", "message": "Injected HTTP 503"}
    assert "Retry-After" not in first.headers
    assert (second.status_code, second.json()["message"]) == (500, "boom")
    assert third.status_code == 200
    assert [r.fault for r in emulator.requests] == ["status:503", "status:500", None]


def test_scripted_status_with_retry_after(emulator):
    emulator.set_faults(Faults(script=[Fault.status(429, retry_after=3)]))
    r = post_report(emulator, team_body())
    assert (r.status_code, r.headers["Retry-After"]) == (429, "3")


def test_scripted_faults_apply_to_api_calls_too(emulator):
    emulator.set_faults(Faults(script=[Fault.status(502)]))
    r = requests.get(f"{emulator.base_url}/v2/org-trees", headers=AUTH, timeout=10)
    assert r.status_code == 502
    assert requests.get(f"{emulator.base_url}/v2/org-trees", headers=AUTH, timeout=10).ok


def test_reset_closes_before_any_byte(emulator):
    emulator.set_faults(Faults(script=[Fault.reset()]))
    with pytest.raises(requests.ConnectionError):
        post_report(emulator, team_body())
    assert emulator.requests[-1].status == 0
    assert emulator.requests[-1].bytes_sent == 0
    assert emulator.requests[-1].fault == "reset"
    assert post_report(emulator, team_body()).status_code == 200


def test_stall_triggers_a_client_read_timeout(emulator):
    emulator.set_faults(Faults(script=[Fault.stall(30)]))
    with pytest.raises(requests.ReadTimeout):
        post_report(emulator, team_body(), timeout=0.5)
    # the stalled handler does not keep stop() waiting (the fixture stops the emulator)


def test_stop_interrupts_a_stalled_handler():
    emu = SEIEmulator(port=0, faults=Faults(script=[Fault.stall(600)])).start()
    errors = []

    def call():
        try:
            post_report(emu, team_body(), timeout=60)
        except requests.RequestException as err:
            errors.append(err)

    thread = threading.Thread(target=call)
    thread.start()
    while emu.pending_script and thread.is_alive():  # until the handler has taken the stall
        threading.Event().wait(0.01)
    emu.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors  # the client saw the connection close
    assert emu.requests[-1].fault == "stall:600.0"


def test_truncate_sends_full_length_but_cuts_the_body(emulator):
    full = expected_body(team_body())
    emulator.set_faults(Faults(script=[Fault.truncate(0.25)]))
    response, conn = raw_post(emulator, team_body())
    assert response.status == 200
    assert int(response.getheader("Content-Length")) == len(full)
    with pytest.raises(http.client.IncompleteRead) as err:
        response.read()
    assert err.value.partial == full[: int(len(full) * 0.25)]
    conn.close()
    assert emulator.requests[-1].bytes_sent == int(len(full) * 0.25)
    assert emulator.requests[-1].fault == "truncate:0.25"


def test_truncate_of_a_streamed_report_still_has_a_length(emulator):
    full = expected_body(contributor_body())
    emulator.set_faults(Faults(script=[Fault.truncate()]))
    response, conn = raw_post(emulator, contributor_body())
    assert int(response.getheader("Content-Length")) == len(full)
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()


def test_chunked_cut_stops_without_the_last_chunk(emulator):
    full = expected_body(team_body())
    emulator.set_faults(Faults(script=[Fault.chunked_cut(0.5)]))
    response, conn = raw_post(emulator, team_body())
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    with pytest.raises(http.client.IncompleteRead) as err:
        response.read()
    assert full.startswith(err.value.partial)
    assert len(err.value.partial) == len(full) // 2
    conn.close()
    emulator.set_faults(Faults(script=[Fault.chunked_cut(0.5)]))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post_report(emulator, team_body())


@pytest.mark.parametrize(
    ("kind", "content_type"), [("html", "text/html"), ("json", "application/json")]
)
def test_wrong_body_is_200_but_not_csv(emulator, kind, content_type):
    emulator.set_faults(Faults(script=[Fault.wrong_body(kind)]))
    r = post_report(emulator, team_body())
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(content_type)
    assert "Content-Disposition" not in r.headers
    if kind == "json":
        assert isinstance(r.json(), dict)
    else:
        assert r.text.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("body", [team_body(), contributor_body()])
def test_drip_sends_the_real_body_in_small_pieces(emulator, body):
    full = expected_body(body)
    emulator.set_faults(Faults(script=[Fault.drip(chunk_bytes=50, interval_s=0.001)]))
    r = post_report(emulator, body, stream=True)
    assert b"".join(r.iter_content(chunk_size=None)) == full
    assert emulator.requests[-1].fault == "drip:50"
    assert emulator.requests[-1].bytes_sent == len(full)


def test_drip_of_a_streamed_report_uses_small_chunks(emulator):
    emulator.set_faults(Faults(script=[Fault.drip(chunk_bytes=32, interval_s=0)]))
    payload = json.dumps(contributor_body()).encode()
    url = urlsplit(emulator.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            f"POST {REPORTS}?format=csv HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + payload
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    sizes = []
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        sizes.append(size)
        rest = rest[size + 2 :]
        if size == 0:
            break
    assert sizes[-1] == 0
    assert max(sizes) == 32
    assert sum(sizes) == len(expected_body(contributor_body()))


def test_latency_fault_still_answers(emulator):
    emulator.set_faults(Faults(latency_ms=5))
    assert post_report(emulator, team_body()).status_code == 200


def test_random_429_without_retry_after_by_default(emulator):
    emulator.set_faults(Faults(error_rate_429=1.0))
    r = post_report(emulator, team_body())
    assert r.status_code == 429
    assert "Retry-After" not in r.headers
    assert r.json()["status"] == "error"
    assert emulator.requests[-1].fault == "error_rate_429"


def test_random_429_with_retry_after(emulator):
    emulator.set_faults(Faults(error_rate_429=1.0, retry_after=7))
    assert post_report(emulator, team_body()).headers["Retry-After"] == "7"


def test_random_503(emulator):
    emulator.set_faults(Faults(error_rate_503=1.0))
    r = requests.get(f"{emulator.base_url}/v2/org-trees", headers=AUTH, timeout=10)
    assert r.status_code == 503


def test_random_drop_closes_without_response(emulator):
    emulator.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(requests.ConnectionError):
        post_report(emulator, team_body())
    assert emulator.requests[-1].fault == "drop_rate"
    assert emulator.requests[-1].status == 0


def test_random_truncate(emulator):
    full = expected_body(team_body())
    emulator.set_faults(Faults(truncate_rate=1.0))
    response, conn = raw_post(emulator, team_body())
    with pytest.raises(http.client.IncompleteRead) as err:
        response.read()
    assert 0 < len(err.value.partial) < len(full)
    conn.close()
    assert emulator.requests[-1].fault == "truncate_rate"


def statuses(emu: SEIEmulator, n: int) -> list[int]:
    out = []
    for _ in range(n):
        try:
            out.append(post_report(emu, team_body()).status_code)
        except requests.ConnectionError:
            out.append(0)
    return out


def test_random_faults_are_reproducible_from_the_seed():
    faults = Faults(error_rate_429=0.3, error_rate_503=0.3, drop_rate=0.1)
    with SEIEmulator(port=0, seed=5, faults=faults) as a, SEIEmulator(port=0, seed=5) as b:
        b.set_faults(faults)
        first = statuses(a, 20)
        assert first == statuses(b, 20)
        assert {0, 200, 429, 503} <= set(first)
        a.reset()
        assert statuses(a, 20) == first


def test_rate_limit_per_key(emulator):
    emulator.set_faults(Faults(rate_limit_per_minute=2, retry_after=30))
    results = [post_report(emulator, team_body()) for _ in range(3)]
    assert [r.status_code for r in results] == [200, 200, 429]
    assert results[2].headers["Retry-After"] == "30"
    assert emulator.requests[-1].fault == "rate_limit_per_minute"
    emulator.reset()
    assert post_report(emulator, team_body()).status_code == 200


def test_reset_clears_records_and_remaining_script(emulator):
    emulator.set_faults(Faults(script=[Fault.status(503), Fault.status(503)]))
    assert post_report(emulator, team_body()).status_code == 503
    emulator.reset()
    assert emulator.requests == []
    assert post_report(emulator, team_body()).status_code == 200


def test_fault_arguments_are_validated():
    with pytest.raises(ValueError):
        Faults(error_rate_429=0.7, error_rate_503=0.7)
    with pytest.raises(ValueError):
        Fault.truncate(1.5)
    with pytest.raises(ValueError):
        Fault.wrong_body("xml")
    with pytest.raises(ValueError):
        Fault.status(42)
