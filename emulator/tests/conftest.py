"""Fixtures for the emulator tests: real servers on 127.0.0.1, free ports, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sei_emulator import SEIEmulator


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[SEIEmulator]:
    """One default emulator for tests that neither fault it nor count its requests."""
    with SEIEmulator(port=0) as emu:
        yield emu


@pytest.fixture
def emulator() -> Iterator[SEIEmulator]:
    """A fresh default emulator (seed 42, 12 teams) per test."""
    with SEIEmulator(port=0) as emu:
        yield emu
