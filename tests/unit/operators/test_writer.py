"""The write-behind thread of the atomic writer: order, bounded memory, errors."""

from __future__ import annotations

import io
import threading

import pytest

from airflow_provider_sei.operators._writer import _WriteBehind


class _Gated(io.BytesIO):
    """A file whose writes wait for a gate, so the queue can be seen filling up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def write(self, data) -> int:  # type: ignore[override]
        self.gate.wait()
        return super().write(data)


class _Broken(io.BytesIO):
    def write(self, data) -> int:  # type: ignore[override]
        raise OSError("disk full")


def test_chunks_are_written_in_order():
    handle = io.BytesIO()
    writer = _WriteBehind(handle)
    for i in range(100):
        writer.write(b"%d," % i)
    writer.finish()
    assert handle.getvalue() == b"".join(b"%d," % i for i in range(100))


def test_at_most_depth_chunks_wait_in_memory():
    handle = _Gated()
    writer = _WriteBehind(handle, depth=2)
    done = threading.Event()

    def produce() -> None:
        for _ in range(10):
            writer.write(b"x")
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    # The writer holds one chunk at the gate and two wait in the queue: the producer blocks.
    assert not done.wait(0.2)
    assert writer._queue.qsize() <= 2
    handle.gate.set()
    producer.join()
    writer.finish()
    assert handle.getvalue() == b"x" * 10


def test_a_write_error_reaches_the_producer():
    writer = _WriteBehind(_Broken())
    writer.write(b"a")
    with pytest.raises(OSError, match="disk full"):
        writer.finish()
