"""Ports for the processes a test starts: below the kernel's ephemeral range, one slice per xdist worker.

A test picks a stack's ports before its `up`, which may bind the last of them 20 s later (a cold synth and
deploy first). A port from bind(0) is in the ephemeral range, where meanwhile any process may get it: the
other worker's supervisors picking task ports, or any outgoing connection's local port. A port below that
range, from this worker's own slice, handed out once per run, is taken by none of them (seen in CI: the
ElastiCache endpoint of a cold stack could not listen on its port).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator

from devenv.runtime.ports import is_free

FIRST, END = 15000, 32000  # below 32768, the kernel's default ephemeral range's start


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    size = (END - FIRST) // count
    return range(FIRST + index * size, FIRST + (index + 1) * size)


_ports: Iterator[int] = itertools.cycle(_slice())
_lock = threading.Lock()


def free_port() -> int:
    """The next free port of this worker's slice on 127.0.0.1 (one nobody else is handed out)."""
    with _lock:
        while True:
            port = next(_ports)
            if is_free(port):
                return port
