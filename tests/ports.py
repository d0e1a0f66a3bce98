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
# Two pytest runs side by side (noxfile.py runs the Docker tests beside the others) each get a part of it,
# and only one of them takes fixed ports (`fixed_or_free`).
RANGE_VARIABLE = "TESTS_PORT_RANGE"
FIXED_PORTS_VARIABLE = "TESTS_FIXED_PORTS"


def _slice() -> range:
    first, end = FIRST, END
    if spec := os.environ.get(RANGE_VARIABLE):
        first, end = (int(bound) for bound in spec.split("-"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    size = (end - first) // count
    return range(first + index * size, first + (index + 1) * size)


_ports: Iterator[int] = itertools.cycle(_slice())
_lock = threading.Lock()


def free_port() -> int:
    """The next free port of this worker's slice on 127.0.0.1 (one nobody else is handed out)."""
    with _lock:
        while True:
            port = next(_ports)
            if is_free(port):
                return port


def fixed_or_free(port: int) -> int:
    """`port` where it is free and this process is the one of the run that may take fixed ports (the first
    xdist worker, unless TESTS_FIXED_PORTS=0: two never race for one); else a free port."""
    first_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0"
    allowed = os.environ.get(FIXED_PORTS_VARIABLE, "1") != "0"
    return port if first_worker and allowed and is_free(port) else free_port()
