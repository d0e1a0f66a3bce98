"""`python -m llmproxy mock-upstream`: parse the options, bind, serve until SIGTERM/SIGINT, exit 0."""

from __future__ import annotations

import signal
import socket
import sys

from llmproxy.mock.app import MockUpstream
from llmproxy.mock.options import parse_options


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str]) -> int:
    """Bind, print the address, serve until SIGTERM/SIGINT, exit 0."""
    import uvicorn

    options = parse_options(argv)
    try:
        sock = bind(options.host, options.port)
    except OSError as exc:
        print(
            f"error: cannot listen on {options.host}:{options.port}: {exc.strerror}\n"
            "fix: pick another port with --port (0 picks a free one) or MOCK_UPSTREAM_PORT",
            file=sys.stderr,
        )
        return 1
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        MockUpstream(options),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it caught once it has shut down; with these handlers in place,
    # that re-raise is harmless and the process exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    print(f"mock-upstream listening on http://{host}:{port}", flush=True)
    server.run(sockets=[sock])
    return 0
