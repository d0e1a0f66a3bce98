"""The relay: a pass-through TCP proxy whose connections can be cut, refused or slowed.

Plain asyncio protocols (no streams): each direction's bytes are written as they arrive, or, under a
latency fault, each chunk after its delay in order; a full send buffer pauses the other side's reads.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast


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
