"""The fault proxy as a process: its command line, the argv and readiness probe the supervisor runs it
with, and its main (the relay and its control API until SIGTERM or SIGINT)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from devenv.runtime import probes
from devenv.services.faultproxy.control import ControlServer
from devenv.services.faultproxy.relay import FaultProxy

MODULE = "devenv.services.faultproxy"


def command(listen: str, upstream: str, control: str) -> list[str]:
    """The argv that runs a fault proxy as a supervised child (addresses are HOST:PORT)."""
    return [sys.executable, "-m", MODULE, "--listen", listen, "--upstream", upstream, "--control", control]


def ready_probe(control_url: str) -> probes.Probe:
    """Passes once the control API answers (the proxy listens before the control API starts)."""
    return probes.http(control_url.rstrip("/") + "/")


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:15432)")
    return host, int(port)


async def serve(listen: tuple[str, int], upstream: tuple[str, int], control: tuple[str, int]) -> None:
    """Run the proxy and its control API until SIGTERM or SIGINT."""
    proxy = FaultProxy(listen[0], listen[1], upstream[0], upstream[1])
    await proxy.listen()
    loop = asyncio.get_running_loop()
    control_server = ControlServer(control, proxy, loop)
    control_server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"faultproxy {proxy.listen_host}:{proxy.listen_port} -> {proxy.upstream_host}:{proxy.upstream_port}, "
        f"control http://{control[0]}:{control[1]}/",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    proxy.stop_listening()
    proxy.cut()
    await control_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="A pass-through TCP proxy that failover experiments steer: "
        "cut connections, refuse new ones, add latency.",
    )
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT clients connect to")
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT of the real service")
    parser.add_argument("--control", type=_address, required=True, help="HOST:PORT of the control API")
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(serve(args.listen, args.upstream, args.control))
    except OSError as exc:
        print(f"faultproxy: cannot listen: {exc} (pick free ports)", file=sys.stderr)
        return 4
    return 0
