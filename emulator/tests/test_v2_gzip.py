"""Gzip: ``.csv.gz`` downloads, ``Content-Encoding: gzip``, and the legacy reports option."""

from __future__ import annotations

import gzip
import zlib

import pytest
import requests
from emu_helpers import AUTH, contributor_body, post_report, team_body
from sei_emulator import SEIEmulator, V2Settings
from v2_helpers import completed, download, export_body, export_csv, poll, raw_get

GZIPPED = export_body("efficiency", options_compression="gzip")


def test_asked_compression_gives_a_csv_gz_file(emulator):
    plain = export_csv(emulator, "efficiency")
    export_id, _ = completed(emulator, "efficiency", GZIPPED)
    response, conn = raw_get(emulator, f"/v2/insights/efficiency/exports/{export_id}/download")
    body = response.read()
    conn.close()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/gzip"
    assert response.getheader("Content-Encoding") is None
    assert int(response.getheader("Content-Length")) == len(body)
    assert response.getheader("Content-Disposition").endswith('.csv.gz"')
    assert body[:2] == b"\x1f\x8b"
    assert gzip.decompress(body) == plain


def test_sprint_status_describes_the_gzip_file(emulator):
    export_id, done = completed(
        emulator, "sprint", export_body("sprint", options_compression="GZIP")
    )
    info = done["download"]
    assert info["compression"] == "gzip"
    assert info["filename"].endswith(".csv.gz")
    assert info["contentType"] == "application/gzip"
    body = download(emulator, "sprint", export_id).content  # requests does not unpack a file
    assert len(body) == info["sizeBytes"]
    assert gzip.decompress(body).startswith(b"Granularity,Team,")


def test_gzip_content_type_can_be_x_gzip(emulator):
    emulator.set_v2(V2Settings(gzip_content_type="application/x-gzip"))
    export_id, _ = completed(emulator, "efficiency", GZIPPED)
    r = download(emulator, "efficiency", export_id)
    assert r.headers["Content-Type"] == "application/x-gzip"


@pytest.mark.parametrize(
    ("settings", "gz"),
    [
        (V2Settings(gzip_min_bytes=1000), True),  # large by size
        (V2Settings(gzip_min_rows=10), True),  # large by rows
        (V2Settings(gzip_min_rows=10_000), False),
        (V2Settings(compression="always"), True),
    ],
)
def test_large_exports_are_gzip_files(settings, gz):
    with SEIEmulator(port=0) as clean:
        plain = export_csv(clean, "ticket-data")
    with SEIEmulator(port=0, v2=settings) as emu:
        export_id, done = completed(emu, "ticket-data")
        body = download(emu, "ticket-data", export_id).content
    assert done["status"] == "COMPLETED"
    assert (body[:2] == b"\x1f\x8b") is gz
    assert (gzip.decompress(body) if gz else body) == plain


def test_compression_never_ignores_the_request(emulator):
    emulator.set_v2(V2Settings(compression="never"))
    export_id, _ = completed(emulator, "efficiency", GZIPPED)
    r = download(emulator, "efficiency", export_id)
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.content.startswith(b"Granularity,")


def test_content_encoding_instead_of_a_file(emulator):
    emulator.set_v2(V2Settings(content_encoding=True))
    plain = export_csv(emulator, "efficiency")  # requests sends Accept-Encoding: gzip
    export_id, _ = completed(emulator, "efficiency", GZIPPED)
    path = f"/v2/insights/efficiency/exports/{export_id}/download"
    response, conn = raw_get(emulator, path, {"Accept-Encoding": "gzip"})
    body = response.read()
    conn.close()
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("Content-Type").startswith("text/csv")
    assert response.getheader("Content-Disposition").endswith('.csv"')
    assert int(response.getheader("Content-Length")) == len(body)
    assert body[:2] == b"\x1f\x8b"
    assert gzip.decompress(body) == plain
    decoded = download(emulator, "efficiency", export_id)  # requests decodes it
    assert decoded.headers["Content-Encoding"] == "gzip"
    assert decoded.content == plain
    # a client that does not accept gzip gets the plain CSV
    response, conn = raw_get(emulator, path, {"Accept-Encoding": "identity"})
    assert response.getheader("Content-Encoding") is None
    assert response.read() == plain
    conn.close()


def test_content_encoding_setting_and_file_do_not_mix(emulator):
    emulator.set_v2(V2Settings(content_encoding=True, status_shape="download_sized"))
    _, done = completed(emulator, "efficiency", GZIPPED)
    assert done["download"]["compression"] == "none"
    assert done["download"]["filename"].endswith(".csv")


def test_same_seed_same_gzip_bytes():
    bodies = []
    for _ in range(2):
        with SEIEmulator(port=0) as emu:
            export_id, _ = completed(emu, "efficiency", GZIPPED)
            bodies.append(download(emu, "efficiency", export_id).content)
    assert bodies[0] == bodies[1]


# The legacy reports endpoint: Accept-Encoding honoured only when asked.


def raw_report(emu: SEIEmulator, body: dict, accept: str) -> requests.Response:
    headers = {**AUTH, "Accept-Encoding": accept}
    return post_report(emu, body, headers=headers, stream=True)


def test_reports_ignore_accept_encoding_by_default(emulator):
    r = raw_report(emulator, team_body(), "gzip")
    assert "Content-Encoding" not in r.headers
    assert r.raw.read(decode_content=False).startswith(b"Collection Name,")


@pytest.mark.parametrize("body", [team_body(), contributor_body()])
def test_gzip_reports_honour_accept_encoding(body):
    with SEIEmulator(port=0) as clean:
        plain = post_report(clean, body).content
    with SEIEmulator(port=0, gzip_reports=True) as emu:
        r = raw_report(emu, body, "gzip, deflate")
        raw = r.raw.read(decode_content=False)
        identity = raw_report(emu, body, "identity").raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == plain
    assert identity == plain


def test_gzip_reports_keep_empty_reports_empty():
    with SEIEmulator(port=0, gzip_reports=True) as emu:
        r = raw_report(emu, team_body(dateStart="2020-01-01", dateEnd="2020-12-31"), "gzip")
    assert r.raw.read(decode_content=False) == b""
    assert "Content-Encoding" not in r.headers


def test_large_gzip_report_is_compressed_once_and_is_one_gzip_member():
    size = 3 * 1_048_576 + 12_345
    with SEIEmulator(port=0, report_bytes=size) as plain_emu:
        plain = post_report(plain_emu, team_body()).content
    with SEIEmulator(port=0, report_bytes=size, gzip_reports=True) as emu:
        first = raw_report(emu, team_body(), "gzip")
        raw = first.raw.read(decode_content=False)
        second = raw_report(emu, team_body(), "gzip").raw.read(decode_content=False)
        cached = emu._gzip_cache._items
        assert len(cached) == 1  # one compression for both requests
    assert int(first.headers["Content-Length"]) == len(raw) < size // 50
    assert raw == second
    d = zlib.decompressobj(31)  # a single member: a plain zlib reader gets it all
    assert d.decompress(raw) == plain
    assert d.eof
    assert not d.unused_data
    assert gzip.decompress(raw) == plain  # CRC and size check


def test_a_job_keeps_its_file_when_settings_change(emulator):
    export_id = completed(emulator, "efficiency", GZIPPED)[0]
    assert emulator.jobs[export_id].payload is None  # generated when first needed
    first = download(emulator, "efficiency", export_id).content
    assert emulator.jobs[export_id].payload.gzip_file
    emulator.set_v2(V2Settings(compression="never"))
    assert download(emulator, "efficiency", export_id).content == first
    assert poll(emulator, "efficiency", export_id).json()["status"] == "COMPLETED"
