"""``python -m airflow_provider_sei.emulator`` for benchmarks, with Nagle's algorithm off.

The emulator's handler writes a response's headers and body in separate writes; with Nagle on
(the socket default) the body then waits for the client's delayed ACK -- about 40 ms on every
reused keep-alive connection, which would swamp the 100 ms latency under test. Real API
gateways set TCP_NODELAY. A no-op once the emulator sets it itself.
"""

from __future__ import annotations

import sys

from airflow_provider_sei.emulator import server
from airflow_provider_sei.emulator.__main__ import main

server._Handler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(main())
