"""A local, faithful Harness SEI reports server for tests, demos and benchmarks.

Stdlib only (plus the metric catalogue); it imports neither Airflow nor the hook.

>>> from sei_emulator import SEIEmulator, Faults, Fault
>>> with SEIEmulator(port=0, seed=42, teams=12) as emu:  # doctest: +SKIP
...     url = emu.base_url + "/v2/insights/teams/reports?format=csv"

The default API key is ``sei-emulator-key`` (header ``x-api-key`` or
``authorization: ApiKey sei-emulator-key``). The default org (``teams=12``) has team ref ids
1 (the root; ``collectionId "1"``), 123, 456, 789 (the API page's examples) and 1001-1008.
Run it standalone with ``python -m sei_emulator --help``.
"""

from __future__ import annotations

from sei_emulator.faults import Fault, Faults
from sei_emulator.server import DEFAULT_API_KEY, RecordedRequest, SEIEmulator

__all__ = ["DEFAULT_API_KEY", "Fault", "Faults", "RecordedRequest", "SEIEmulator"]
