"""A tiny in-process DNS responder that serves SRV record sets to Caddy's dynamic upstreams.

Why: every change to Caddy's config is a reload, and a reload closes clients' idle keep-alive
connections. Caddy's `dynamic_upstreams` (source `srv`) instead looks its upstreams up by DNS and caches
them for a short refresh interval, so target lists change here, in plain Python state, and Caddy's config
never changes.

It answers SRV queries (class IN) for the names it holds, TTL 0, each record naming `SRV_TARGET` and a
port (Go's resolver drops SRV targets that are IP literals), and the A query for `SRV_TARGET` with
127.0.0.1 (Caddy's transport resolves it here too); any other name is NXDOMAIN, any other type an empty
answer. UDP only, no truncation handling: a name holds at most `MAX_RECORDS` records.

A name with no target answers its fallback port (`set_fallback`) instead of an empty answer: Go reports
an empty SRV answer as "no such host", and Caddy logs each such lookup, every request, as an error
("failed getting dynamic upstreams"). The fallback is where the load balancer serves what an empty list
means (devenv.services.caddy_config).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading

from devenv.errors import ConfigError

log = logging.getLogger(__name__)

SRV_TARGET = "target.tg.devenv.internal."
MAX_RECORDS = 25  # 25 records of 45 bytes fit the 1232-byte EDNS payload Go's resolver advertises
TYPE_A = 1
TYPE_SRV = 33
CLASS_IN = 1


class SrvResponder:
    """A UDP DNS server on 127.0.0.1 (a free port) answering SRV queries from `set_targets` record sets."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[int, ...]] = {}
        self._fallbacks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)  # how soon `close` stops the server thread
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="devenv-srv-responder", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """HOST:PORT, as Caddy's `resolver.addresses` takes it."""
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def set_targets(self, name: str, ports: list[int]) -> None:
        """Make `name` answer one SRV record per port (in this order); an empty list answers its fallback,
        or no record."""
        if len(ports) > MAX_RECORDS:
            raise ConfigError(
                f"{name}: {len(ports)} targets; the local load balancer serves at most {MAX_RECORDS} per list",
                f"run at most {MAX_RECORDS} tasks behind one target group locally",
            )
        with self._lock:
            self._records[_normalize(name)] = tuple(ports)

    def set_fallback(self, name: str, port: int) -> None:
        """What `name` answers while it has no target: one record for `port` (the name exists from now)."""
        with self._lock:
            self._fallbacks[_normalize(name)] = port
            self._records.setdefault(_normalize(name), ())

    def targets(self, name: str) -> list[int]:
        """The targets of `name` now (its fallback is not one; empty if it holds none)."""
        with self._lock:
            return list(self._records.get(_normalize(name), ()))

    def answers(self) -> dict[str, tuple[int, ...]]:
        """What each name answers now: its targets, or its fallback when it has none."""
        with self._lock:
            return {
                name: ports or ((self._fallbacks[name],) if name in self._fallbacks else ())
                for name, ports in self._records.items()
            }

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                query, client = self._socket.recvfrom(4096)
                reply = answer(query, self.answers())
                if reply is not None:
                    self._socket.sendto(reply, client)
            except TimeoutError:
                continue
            except OSError as exc:  # one client's problem (or the socket closed): serve on until closed
                if self._closed.is_set():
                    return
                log.warning("DNS responder: %s", exc)


def answer(query: bytes, records: dict[str, tuple[int, ...]]) -> bytes | None:
    """The response to one DNS query (None for a packet that is not a parseable query)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None  # a response, or not exactly one question
    labels, offset = [], 12
    while True:
        if offset >= len(query):
            return None
        length = query[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(query):
            return None  # compression in a question, or a truncated label
        labels.append(query[offset : offset + length].decode("ascii", errors="replace"))
        offset += length
    if offset + 4 > len(query):
        return None
    qtype, qclass = struct.unpack("!HH", query[offset : offset + 4])
    question = query[12 : offset + 4]
    name = _normalize(".".join(labels))
    # QR, AA, RD copied from the query; no recursion available.
    reply_flags = 0x8000 | 0x0400 | (flags & 0x0100)
    if name == SRV_TARGET:
        address = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 0, 4) + socket.inet_aton("127.0.0.1")
        answers = address if (qtype, qclass) == (TYPE_A, CLASS_IN) else b""
        return struct.pack("!HHHHHH", ident, reply_flags, 1, 1 if answers else 0, 0, 0) + question + answers
    ports = records.get(name)
    if ports is None:
        reply_flags |= 3  # NXDOMAIN for a name it does not hold
    found = list(ports or ()) if (qtype, qclass) == (TYPE_SRV, CLASS_IN) else []
    header = struct.pack("!HHHHHH", ident, reply_flags, 1, len(found), 0, 0)
    target = _encode_name(SRV_TARGET)
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, TYPE_SRV, CLASS_IN, 0, 6 + len(target))
        # Go sorts SRV records by priority and shuffles equal ones: distinct priorities keep this order.
        + struct.pack("!HHH", priority, 1, port)
        + target
        for priority, port in enumerate(found)
    )
    return header + question + answers


def _normalize(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _encode_name(name: str) -> bytes:
    return (
        b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.rstrip(".").split(".")) + b"\0"
    )
