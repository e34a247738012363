"""``tests/hostile.py`` does what it says, seen from raw sockets, ``http.client`` and requests."""

from __future__ import annotations

import gzip
import http.client
import socket
import time
import zlib
from collections.abc import Iterator

import pytest
import requests
from hostile import (
    NOT_SCRIPTED,
    Close,
    Drip,
    Hold,
    HostileServer,
    Pause,
    Reset,
    Send,
    chunk,
    csv,
    head,
    json_error,
    json_response,
    redirect,
    response,
)

GET = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
ROWS = b"".join(b"team-%05d,%d\n" % (i, i * 7919 % 1000) for i in range(5000))  # ~70 KB


@pytest.fixture
def srv() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def connect(srv: HostileServer, timeout: float = 5) -> socket.socket:
    """Open a raw connection to the server."""
    return socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])), timeout)


def read_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    """Read until ``marker`` has arrived (or the server closed)."""
    while marker not in data and (more := sock.recv(65536)):
        data += more
    return data


def read_to_end(sock: socket.socket) -> bytes:
    """Read until the server closes."""
    data = b""
    while more := sock.recv(65536):
        data += more
    return data


def wire(srv: HostileServer, request: bytes = GET) -> tuple[bytes, bytes]:
    """Send one request on a fresh connection; the head and the body, read to the close."""
    with connect(srv) as sock:
        sock.sendall(request)
        data = read_to_end(sock)
    start, _, body = data.partition(b"\r\n\r\n")
    return start + b"\r\n\r\n", body


def http_get(srv: HostileServer, path: str = "/") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=5)
    conn.request("GET", path)
    return conn.getresponse()


# --- recording and scripts ---------------------------------------------------------------


def test_requests_are_recorded_in_full(srv):
    before = time.monotonic()
    with connect(srv) as sock:
        sock.sendall(
            b"POST /v2/x?a=1&b=&a=2 HTTP/1.1\r\nHost: t\r\nX-Api-Key: k\r\nAccept: a\r\n"
            b"Accept: b\r\nContent-Length: 8\r\n\r\n" + b'{"n": 1}'
        )
        read_until(sock, b"\r\n\r\n")
        sock.sendall(
            b"PUT /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk(b"hello ")
            + chunk(b"world")
            + b"0\r\nX-Trailer: 1\r\n\r\n"
        )
        read_until(sock, b"\r\n\r\n")

    first, second = srv.requests
    assert (first.method, first.path, first.target) == ("POST", "/v2/x", "/v2/x?a=1&b=&a=2")
    assert first.query == {"a": "2", "b": ""}
    assert first.headers == {"host": "t", "x-api-key": "k", "accept": "a, b",
                             "content-length": "8"}  # fmt: skip
    assert first.json() == {"n": 1}
    assert before <= first.at <= second.at <= time.monotonic()
    assert (second.method, second.body) == ("PUT", b"hello world")
    assert first.connection == second.connection == 1
    assert srv.hits == 2
    assert srv.requests_to("/up") == [second]
    assert srv.requests_to("/up", method="GET") == []


def test_keep_alive_serves_several_requests_on_one_connection(srv):
    srv.default = response(200, {}, b"ok")
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=5)
    for path in ("/a", "/b", "/c"):
        conn.request("GET", path)
        assert conn.getresponse().read() == b"ok"
    conn.close()
    assert [r.path for r in srv.requests] == ["/a", "/b", "/c"]
    assert {r.connection for r in srv.requests} == {1}
    assert srv.connections == 1


def test_the_script_plays_in_order_then_the_default(srv):
    srv.script(response(201), response(202))
    statuses = [requests.get(srv.url).status_code for _ in range(3)]
    srv.default = response(204)
    statuses.append(requests.get(srv.url).status_code)
    assert statuses == [201, 202, 404, 204]  # 404: NOT_SCRIPTED, the first default
    assert srv.default is not NOT_SCRIPTED


def test_route_scripts_answer_a_v2_job_create_polls_and_download(srv):
    srv.route("/v2/jobs", json_response({"id": "7"}, status=201), method="POST")
    srv.route("/v2/jobs/7", json_response({"state": "RUNNING"}), json_response({"state": "DONE"}))
    srv.route("/v2/jobs/7/download", csv(b"a,b\n1,2\n"))
    srv.script(response(418))  # the main script serves other paths, and exhausted routes
    with requests.Session() as session:
        created = session.post(f"{srv.url}/v2/jobs", json={"q": 1})
        polls = [session.get(f"{srv.url}/v2/jobs/7").json()["state"] for _ in range(2)]
        download = session.get(f"{srv.url}/v2/jobs/7/download")
        extra_poll = session.get(f"{srv.url}/v2/jobs/7")
    assert (created.status_code, created.json()) == (201, {"id": "7"})
    assert polls == ["RUNNING", "DONE"]
    assert download.content == b"a,b\n1,2\n"
    assert extra_poll.status_code == 418
    assert srv.requests_to("/v2/jobs", method="POST")[0].json() == {"q": 1}
    assert len(srv.requests_to("/v2/jobs/7")) == 3


def test_reset_forgets_requests_and_unplayed_scripts(srv):
    srv.script(response(500))
    srv.route("/x", response(500))
    requests.get(srv.url + "/y")
    srv.reset()
    assert srv.requests == []
    assert requests.get(srv.url + "/x").status_code == 404


def test_a_callable_reply_echoes_the_request(srv):
    srv.default = lambda request: redirect(302, "https://x.example/?k=" + request.headers["x-k"])
    reply = requests.get(srv.url, headers={"X-K": "s3cret"}, allow_redirects=False)
    assert (reply.status_code, reply.headers["Location"]) == (302, "https://x.example/?k=s3cret")


def test_a_reply_that_raises_is_kept_and_answered_with_500(srv):
    srv.default = lambda request: 1 / 0
    assert requests.get(srv.url).status_code == 500
    assert isinstance(srv.errors[0], ZeroDivisionError)


def test_a_client_that_leaves_mid_request_does_not_harm_the_next(srv):
    with connect(srv) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    assert requests.get(srv.url).status_code == 404
    assert [r.method for r in srv.requests] == ["GET"]


# --- acts ----------------------------------------------------------------------------------


def test_drip_headers_sends_the_head_slowly_and_unchanged(srv):
    srv.script(response(200, {"X-A": "b"}, b"ok", drip_headers=(2, 0.005)))
    start = time.monotonic()
    head_bytes, body = wire(srv)
    elapsed = time.monotonic() - start
    assert head_bytes == b"HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\r\n"
    assert body == b"ok"
    assert elapsed >= (len(head_bytes) // 2 - 1) * 0.005


def test_drip_sends_n_bytes_every_t_seconds(srv):
    srv.script([Send(head(200, {"Content-Length": 10})), Drip(b"0123456789", 2, 0.02)])
    start = time.monotonic()
    _, body = wire(srv)
    assert body == b"0123456789"
    assert time.monotonic() - start >= 4 * 0.02  # 5 pieces, 4 waits


def test_pause_delays_what_follows(srv):
    srv.script([Send(head(200, {"Content-Length": 3})), Pause(0.1), Send(b"end")])
    with connect(srv) as sock:
        start = time.monotonic()
        sock.sendall(GET)
        data = read_until(sock, b"\r\n\r\n")
        head_seen = time.monotonic()
        data = read_until(sock, b"end", data)
        end_seen = time.monotonic()
    assert data.endswith(b"\r\n\r\nend")
    assert end_seen - start >= 0.1
    assert end_seen > head_seen


def test_interim_103_arrives_before_the_200(srv):
    srv.script(response(200, {}, b"ok", interim=[(103, {"Link": "</x>; rel=preload"})]))
    with connect(srv) as sock:
        sock.sendall(GET)
        data = read_to_end(sock)
    assert data == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )


def test_a_longer_content_length_than_the_body_then_fin(srv):
    srv.script(response(200, {}, b"0123456789", content_length=100))
    head_bytes, body = wire(srv)  # read to a clean end of stream: a FIN, not a RST
    assert head_bytes.count(b"Content-Length") == 1
    assert b"Content-Length: 100\r\n" in head_bytes
    assert body == b"0123456789"
    srv.script(response(200, {}, b"0123456789", content_length=100))
    with pytest.raises(http.client.IncompleteRead):
        http_get(srv).read()


def test_a_shorter_content_length_still_sends_every_byte(srv):
    srv.script(response(200, {}, b"0123456789", content_length=4))
    head_bytes, body = wire(srv)
    assert b"Content-Length: 4\r\n" in head_bytes
    assert body == b"0123456789"


def test_cut_after_announces_the_whole_body_and_sends_a_part(srv):
    srv.script(response(200, {}, b"0123456789", cut_after=4))
    head_bytes, body = wire(srv)
    assert (b"Content-Length: 10\r\n" in head_bytes, body) == (True, b"0123")


def test_a_gzip_body_without_framing_cut_mid_stream_has_no_trailer(srv):
    encoded = gzip.compress(ROWS, mtime=0)
    cut = len(encoded) // 2
    srv.script(response(200, {"Content-Type": "text/csv"}, ROWS, framing="close",
                        content_encoding="gzip", cut_after=cut))  # fmt: skip
    head_bytes, body = wire(srv)
    assert b"Content-Encoding: gzip\r\n" in head_bytes
    assert b"Content-Length" not in head_bytes
    assert b"Transfer-Encoding" not in head_bytes
    assert body == encoded[:cut]
    stream = zlib.decompressobj(wbits=31)  # gzip
    text = stream.decompress(body)
    assert not stream.eof  # the stream is incomplete: no end of deflate data, no trailer
    assert text
    assert ROWS.startswith(text)


def test_a_whole_gzip_body_without_framing_ends_at_the_close(srv):
    srv.script(response(200, {}, ROWS, framing="close", content_encoding="gzip"))
    _, body = wire(srv)
    stream = zlib.decompressobj(wbits=31)
    assert stream.decompress(body) == ROWS
    assert stream.eof


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_encoded_bodies_decode_in_requests(srv, encoding):
    srv.script(response(200, {}, ROWS, content_encoding=encoding))
    reply = requests.get(srv.url)
    assert reply.headers["Content-Encoding"] == encoding
    assert reply.content == ROWS


def test_an_unknown_content_encoding_is_announced_only(srv):
    srv.script(response(200, {}, b"plain", content_encoding="br"))
    head_bytes, body = wire(srv)
    assert (b"Content-Encoding: br\r\n" in head_bytes, body) == (True, b"plain")


def test_a_chunked_body_one_chunk_per_piece(srv):
    srv.script(response(200, {}, [b"abc", b"defg"], framing="chunked"))
    head_bytes, body = wire(srv)
    assert b"Transfer-Encoding: chunked\r\n" in head_bytes
    assert body == b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    srv.script(response(200, {}, [b"abc", b"defg"], framing="chunked"))
    assert http_get(srv).read() == b"abcdefg"


def test_a_chunked_body_cut_mid_chunk(srv):
    srv.script(response(200, {}, [b"a" * 10, b"b" * 10], framing="chunked", cut_after=15))
    _, body = wire(srv)
    assert body == b"a\r\n" + b"a" * 10 + b"\r\na\r\n" + b"b" * 5  # announced 10, sent 5
    srv.script(response(200, {}, [b"a" * 10, b"b" * 10], framing="chunked", cut_after=15))
    with pytest.raises(http.client.IncompleteRead):
        http_get(srv).read()


def test_reset_is_econnreset(srv):
    srv.script([Reset()])
    with connect(srv) as sock:
        sock.sendall(GET)
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_reset_at_end_sends_the_response_then_a_rst(srv):
    srv.script(response(200, {}, b"ok", reset_at_end=True))
    with connect(srv) as sock:
        sock.sendall(GET)
        data = read_until(sock, b"\r\n\r\nok")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_close_is_a_fin_after_which_nothing_more_is_served(srv):
    srv.script([Send(b"HTTP/1.1 200 OK\r\n"), Close(), Send(b"never")])
    _, body = wire(srv, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # keep-alive asked, still closed
    assert body == b""
    assert srv.hits == 1


def test_hold_sends_nothing_until_the_client_leaves(srv):
    srv.script([Hold()])
    with connect(srv, timeout=0.1) as sock:
        sock.sendall(GET)
        with pytest.raises(TimeoutError):
            sock.recv(100)
    (thread,) = srv._threads
    thread.join(1)  # returns as soon as the serving thread notices the client left
    assert not thread.is_alive()


def test_hold_ends_when_the_server_stops(srv):
    srv.script([Hold()])
    with connect(srv, timeout=0.1) as sock:
        sock.sendall(GET)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 1
        sock.settimeout(1)
        assert sock.recv(100) == b""


@pytest.mark.parametrize(
    "reply",
    [
        response(200, {}, b"x" * 1000, drip_body=(1, 0.5)),
        [Send(head(200, {"Content-Length": 2}) + b"x"), Pause(30), Send(b"y")],
    ],
    ids=["mid-drip", "mid-pause"],
)
def test_stop_is_prompt_while_a_client_is_dripped_to(srv, reply):
    srv.script(reply)
    with connect(srv) as sock:
        sock.sendall(GET)
        data = read_until(sock, b"\r\n\r\nx")
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 1
        data += read_to_end(sock)
    assert data.endswith(b"\r\n\r\nx")  # the drip ended with the server


# --- builders ------------------------------------------------------------------------------


def test_odd_header_bytes_and_filenames_go_out_as_given(srv):
    name = b'../\xff\x00"evil.csv'
    srv.script(csv(b"a\n", filename=name))
    head_bytes, _ = wire(srv)
    assert b'Content-Disposition: attachment; filename="../\xff\x00"evil.csv"\r\n' in head_bytes
    srv.script(response(200, [(b"X-Odd", b"\x7f\x80\tv"), ("X-Odd", "é")], reason="Fine\x01"))
    head_bytes, _ = wire(srv)
    assert head_bytes.startswith(b"HTTP/1.1 200 Fine\x01\r\nX-Odd: \x7f\x80\tv\r\n")
    assert "X-Odd: é\r\n".encode() in head_bytes  # str values go out as UTF-8


def test_csv_json_error_and_redirect(srv):
    srv.script(
        csv("t,v\n"),
        json_error(429, "slow down", retry_after=2),
        redirect(307, "/elsewhere"),
    )
    report = requests.get(srv.url)
    error = requests.get(srv.url)
    moved = requests.get(srv.url, allow_redirects=False)
    assert (report.headers["Content-Type"], report.text) == ("text/csv", "t,v\n")
    assert report.headers["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert (error.status_code, error.headers["Retry-After"]) == (429, "2")
    assert error.json() == {"status": "error", "message": "slow down"}
    assert (moved.status_code, moved.headers["Location"]) == (307, "/elsewhere")
