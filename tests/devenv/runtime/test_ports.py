"""free_port: the ports it hands out, under the calls of many threads at once."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from devenv.runtime.ports import free_port


def test_free_port_never_hands_out_a_port_twice_though_the_kernel_does() -> None:
    # bind(0) picks among ~14,000 ports: 4,000 picks repeat some (a birthday draw), which free_port must not
    with ThreadPoolExecutor(max_workers=8) as pool:
        ports = list(pool.map(lambda _: free_port(), range(4000)))
    assert len(set(ports)) == len(ports)


def test_a_port_from_free_port_can_be_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free_port()))
