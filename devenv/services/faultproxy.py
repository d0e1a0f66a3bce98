"""A pass-through TCP proxy that failover experiments steer: cut connections, refuse new ones, add latency.

It stands where Toxiproxy would (not installable here) in front of the local Postgres (Aurora's endpoint)
and Redis (ElastiCache's). Run it as a direct child of the supervisor:

    python -m devenv.services.faultproxy --listen 127.0.0.1:P --upstream 127.0.0.1:Q --control 127.0.0.1:C

Control API (JSON over HTTP on --control):
    GET    /        status: listen/upstream addresses, open and total connections, the current fault
    POST   /faults  {"kind": "cut"}                                  close every open connection now
                    {"kind": "refuse", "duration_s": N}              stop listening for N s (new connections
                                                                     are refused; open ones stay)
                    {"kind": "latency", "latency_ms": N, "duration_s": N?}  delay every chunk N ms, both ways
    DELETE /faults  clear the current fault (listen again, no latency)

`refuse` and `latency` are states (a new one replaces the current one); `cut` is a one-off action. Bad
input gets a 400 with {"error": ..., "hint": ...}. The `cut`, `refuse`, `add_latency`, `clear` and `status`
functions below are the Python client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from devenv.errors import NotRunningError, UsageError
from devenv.runtime import probes

FAULT_KINDS = ("cut", "refuse", "latency")
# Everything here talks to 127.0.0.1: never through an HTTP proxy from the environment.
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- the proxy ---------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A fault that lasts: `refuse` or `latency`; `expires_at` is a monotonic time or None (until cleared)."""

    kind: str
    latency_ms: float = 0.0
    expires_at: float | None = None

    def describe(self) -> dict[str, Any]:
        remaining = None if self.expires_at is None else max(0.0, self.expires_at - time.monotonic())
        described: dict[str, Any] = {"kind": self.kind, "remaining_s": remaining}
        if self.kind == "latency":
            described["latency_ms"] = self.latency_ms
        return described


class _Close:
    """Queued after the last chunk of a direction whose sender closed: close the receiver then."""


CLOSE = _Close()
Item = bytes | None | _Close  # a chunk, an EOF (None), or CLOSE


class _Direction:
    """Bytes flowing one way (client -> upstream or back). Under latency each chunk waits `latency_s`
    in order, without holding back the chunks behind it (as on a slow network, not a slow reader)."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.destination: asyncio.Transport | None = None
        self.unconnected: list[Item] = []  # sent before the destination connected
        self.queue: deque[tuple[float, Item]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def send(self, item: Item) -> None:
        latency_s = self.proxy.latency_s()
        if not self.queue and latency_s == 0:
            self._deliver(item)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + latency_s
        if self.queue:
            due = max(due, self.queue[-1][0])
        self.queue.append((due, item))
        if self.timer is None:
            self.timer = loop.call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        loop = asyncio.get_running_loop()
        while self.queue and self.queue[0][0] <= loop.time():
            self._deliver(self.queue.popleft()[1])
        if self.queue:
            self.timer = loop.call_at(self.queue[0][0], self._flush)

    def attach(self, destination: asyncio.Transport) -> None:
        self.destination = destination
        for item in self.unconnected:
            self._deliver(item)
        self.unconnected.clear()

    def _deliver(self, item: Item) -> None:
        destination = self.destination
        if destination is None:
            self.unconnected.append(item)
            return
        if destination.is_closing():
            return
        if isinstance(item, bytes):
            destination.write(item)
        elif item is None:
            if destination.can_write_eof():
                destination.write_eof()
        else:
            destination.close()

    def drop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.unconnected.clear()


class _End(asyncio.Protocol):
    """One socket of a proxied connection: what it reads goes out through `outgoing`; when the other
    socket's send buffer is full it stops reading (back-pressure)."""

    def __init__(self, link: Link, outgoing: _Direction, incoming: _Direction) -> None:
        self.link = link
        self.outgoing = outgoing
        self.incoming = incoming
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.incoming.attach(self.transport)

    def data_received(self, data: bytes) -> None:
        self.outgoing.send(data)

    def eof_received(self) -> bool:
        self.outgoing.send(None)
        return True  # keep the other half open, as a plain TCP relay does

    def connection_lost(self, exc: Exception | None) -> None:
        self.incoming.drop()
        self.outgoing.send(CLOSE)
        self.link.lost()

    def pause_writing(self) -> None:
        self.link.peer_of(self).pause_reading()

    def resume_writing(self) -> None:
        self.link.peer_of(self).resume_reading()


class Link:
    """A client connection and its upstream connection."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        to_upstream, to_client = _Direction(proxy), _Direction(proxy)
        self.client: _End = _Client(self, outgoing=to_upstream, incoming=to_client)
        self.upstream = _End(self, outgoing=to_client, incoming=to_upstream)
        self.directions = (to_upstream, to_client)

    def peer_of(self, end: _End) -> asyncio.Transport:
        peer = self.upstream if end is self.client else self.client
        assert peer.transport is not None
        return peer.transport

    def accepted(self, client: asyncio.Transport) -> None:
        """Called as the client connects: hold its bytes until the upstream connection is up."""
        client.pause_reading()
        self.proxy.links.add(self)
        self.proxy.total_connections += 1
        self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        client = self.client.transport
        assert client is not None
        try:
            await loop.create_connection(
                lambda: self.upstream, self.proxy.upstream_host, self.proxy.upstream_port
            )
        except OSError:
            client.abort()  # the upstream is down: the client sees its connection dropped
            return
        if client.is_closing():  # the client left (or was cut) while we connected
            self.abort()
        else:
            client.resume_reading()

    def abort(self) -> None:
        for direction in self.directions:
            direction.drop()
        for end in (self.client, self.upstream):
            if end.transport is not None:
                end.transport.abort()
        self.lost()

    def lost(self) -> None:
        self.proxy.links.discard(self)


class _Client(_End):
    """The client's socket: connecting to the upstream starts when it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.link.accepted(self.transport)


@dataclass
class FaultProxy:
    """The proxy's state: where it listens, where it forwards, its open connections and its fault."""

    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int
    fault: Fault | None = None
    total_connections: int = 0
    links: set[Link] = field(default_factory=set)
    server: asyncio.Server | None = None
    expiry: asyncio.TimerHandle | None = None
    expiring: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self._new_link, self.listen_host, self.listen_port, reuse_address=True
        )

    def _new_link(self) -> _End:
        return Link(self).client

    def stop_listening(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def latency_s(self) -> float:
        fault = self.fault
        return fault.latency_ms / 1000 if fault is not None and fault.kind == "latency" else 0.0

    def cut(self) -> int:
        """Abort every open connection (both sides); returns how many were cut."""
        links = list(self.links)
        for link in links:
            link.abort()
        return len(links)

    async def set_fault(self, fault: Fault | None) -> None:
        """Replace the current fault; a timed one clears itself when its time is up."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        self.fault = fault
        if fault is not None and fault.kind == "refuse":
            self.stop_listening()
        elif self.server is None:
            await self.listen()
        if fault is not None and fault.expires_at is not None:
            loop = asyncio.get_running_loop()
            self.expiry = loop.call_at(loop.time() + (fault.expires_at - time.monotonic()), self._expire)

    def _expire(self) -> None:
        self.expiry = None
        self.expiring = asyncio.get_running_loop().create_task(self.set_fault(None))

    def status(self) -> dict[str, Any]:
        return {
            "listen": f"{self.listen_host}:{self.listen_port}",
            "upstream": f"{self.upstream_host}:{self.upstream_port}",
            "listening": self.server is not None,
            "connections": len(self.links),
            "total_connections": self.total_connections,
            "fault": None if self.fault is None else self.fault.describe(),
        }


# ---- the control API ----------------------------------------------------------------------------------


class BadFault(ValueError):
    """A control request the proxy cannot act on; `hint` says what a valid one looks like."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


FAULT_HINT = (
    'send {"kind": "cut"}, {"kind": "refuse", "duration_s": 5} or '
    '{"kind": "latency", "latency_ms": 100, "duration_s": 10} (duration_s optional for latency)'
)


def parse_fault(body: Any) -> Fault | None:
    """The fault a POST /faults body asks for; None for `cut` (an action, not a state)."""
    if not isinstance(body, dict):
        raise BadFault("the body must be a JSON object", FAULT_HINT)
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise BadFault(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}", FAULT_HINT)
    allowed = {
        "cut": {"kind"},
        "refuse": {"kind", "duration_s"},
        "latency": {"kind", "latency_ms", "duration_s"},
    }
    unknown = sorted(set(body) - allowed[kind])
    if unknown:
        raise BadFault(f"unexpected field(s) for {kind}: {', '.join(unknown)}", FAULT_HINT)
    if kind == "cut":
        return None
    duration = body.get("duration_s")
    if kind == "refuse" and duration is None:
        raise BadFault("refuse needs duration_s (seconds to refuse new connections)", FAULT_HINT)
    if duration is not None and not _positive_number(duration):
        raise BadFault(f"duration_s must be a number > 0, got {duration!r}", FAULT_HINT)
    expires_at = None if duration is None else time.monotonic() + float(duration)
    if kind == "refuse":
        return Fault("refuse", expires_at=expires_at)
    latency = body.get("latency_ms")
    if latency is None or not (_positive_number(latency) or latency == 0):
        raise BadFault(f"latency needs latency_ms, a number >= 0, got {latency!r}", FAULT_HINT)
    return Fault("latency", latency_ms=float(latency), expires_at=expires_at)


def _positive_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


async def _control(proxy: FaultProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one HTTP/1.1 control request (then close): small enough not to need a web framework."""
    try:
        status, payload = await _control_request(proxy, reader)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        status, payload = 400, {"error": "malformed HTTP request", "hint": "use an HTTP/1.1 client"}
    body = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def _control_request(proxy: FaultProxy, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines if line)
    }
    length = int(headers.get("content-length", "0") or "0")
    raw = await reader.readexactly(length) if length else b""
    path = path.split("?", 1)[0]
    if path == "/" and method == "GET":
        return 200, proxy.status()
    if path != "/faults":
        return 404, {"error": f"no such resource {path}", "hint": "use GET /, POST /faults or DELETE /faults"}
    if method == "DELETE":
        await proxy.set_fault(None)
        return 200, proxy.status()
    if method != "POST":
        return 405, {"error": f"{method} /faults is not supported", "hint": "use POST or DELETE /faults"}
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        return 400, {"error": f"the body is not valid JSON: {exc}", "hint": FAULT_HINT}
    try:
        fault = parse_fault(body)
    except BadFault as exc:
        return 400, {"error": str(exc), "hint": exc.hint}
    if fault is None:
        cut = proxy.cut()
        return 200, {**proxy.status(), "cut": cut}
    await proxy.set_fault(fault)
    return 200, proxy.status()


# ---- the process ---------------------------------------------------------------------------------------


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:15432)")
    return host, int(port)


async def serve(listen: tuple[str, int], upstream: tuple[str, int], control: tuple[str, int]) -> None:
    """Run the proxy and its control API until SIGTERM or SIGINT."""
    proxy = FaultProxy(listen[0], listen[1], upstream[0], upstream[1])
    await proxy.listen()
    control_server = await asyncio.start_server(
        lambda r, w: _control(proxy, r, w), control[0], control[1], reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"faultproxy {proxy.listen_host}:{proxy.listen_port} -> {proxy.upstream_host}:{proxy.upstream_port}, "
        f"control http://{control[0]}:{control[1]}/",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    control_server.close()
    proxy.stop_listening()
    proxy.cut()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.services.faultproxy", description=__doc__.split("\n")[0]
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


def command(listen: str, upstream: str, control: str) -> list[str]:
    """The argv that runs a fault proxy as a supervised child (addresses are HOST:PORT)."""
    return [
        sys.executable,
        "-m",
        "devenv.services.faultproxy",
        "--listen",
        listen,
        "--upstream",
        upstream,
        "--control",
        control,
    ]


def ready_probe(control_url: str) -> probes.Probe:
    """Passes once the control API answers (the proxy listens before the control API starts)."""
    return probes.http(control_url.rstrip("/") + "/")


# ---- the client ----------------------------------------------------------------------------------------


def status(control_url: str) -> dict[str, Any]:
    """The proxy's status: open and total connections, whether it listens, the current fault."""
    return _call(control_url, "GET", "/")


def cut(control_url: str) -> dict[str, Any]:
    """Close every open connection now (new ones pass); the status carries how many were `cut`."""
    return _call(control_url, "POST", "/faults", {"kind": "cut"})


def refuse(control_url: str, seconds: float) -> dict[str, Any]:
    """Refuse new connections (stop listening) for `seconds`; open connections stay."""
    return _call(control_url, "POST", "/faults", {"kind": "refuse", "duration_s": seconds})


def add_latency(control_url: str, ms: float, seconds: float | None = None) -> dict[str, Any]:
    """Delay every chunk by `ms` both ways, for `seconds` (None: until cleared)."""
    body: dict[str, Any] = {"kind": "latency", "latency_ms": ms}
    if seconds is not None:
        body["duration_s"] = seconds
    return _call(control_url, "POST", "/faults", body)


def clear(control_url: str) -> dict[str, Any]:
    """Clear the current fault: listen again, no latency."""
    return _call(control_url, "DELETE", "/faults")


def _call(control_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        control_url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with LOCAL_HTTP.open(request, timeout=5) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as exc:
        problem = json.load(exc)
        raise UsageError(
            f"fault proxy refused {method} {path}: {problem['error']}", problem.get("hint")
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NotRunningError(
            f"the fault proxy's control API at {control_url} does not answer ({exc})",
            "start it (devenv up) or check the control address",
        ) from exc


if __name__ == "__main__":
    sys.exit(main())
