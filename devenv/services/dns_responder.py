"""The ALB mirror's target discovery: a small DNS server process that answers Caddy's SRV lookups from
the target lists file the control plane writes.

Why a DNS server: every change to Caddy's config is a reload, and a reload closes clients' idle keep-alive
connections (measured again on Caddy 2.11: 5 errors in ~115 requests on one keep-alive connection across
~40 upstream patches through the admin API). Caddy's `dynamic_upstreams` (source `srv`) instead looks its
upstreams up by DNS and caches them for a short refresh interval, so target lists change in a file and
Caddy's config never changes.

Why a process of its own, reading a file: the data path must not depend on the supervisor (a busy or
restarting control plane), as an ALB keeps routing while ECS is down. The lists live in a file beside
Caddy's config (`write_lists`, an atomic replace), so this process, restarted, answers what it answered
before, and any process can read them (`read_lists`). Caddy keeps its last answer through a failed lookup
(`grace_period`, devenv.services.caddy_config), so not even this process being down or restarting turns
the ALB into 503s: only target changes wait for it.

It answers SRV queries (class IN) for the names the file holds, TTL 0, each record naming `SRV_TARGET`
and a port (Go's resolver drops SRV targets that are IP literals, and resolves the absolute name
`localhost.` through DNS, not /etc/hosts, on some machines), and the A query for `SRV_TARGET` with
127.0.0.1 (Caddy's transport resolves it here when it opens a new connection to a target: the one thing
of the data path that still waits for this process, for as long as a supervised restart takes);
any other name is NXDOMAIN, any other type an empty answer. UDP only, no truncation handling: a name holds at most `MAX_RECORDS` records.

A name with no target answers its fallback port instead of an empty answer: Go reports an empty SRV
answer as "no such host", and Caddy logs each such lookup, every request, as an error ("failed getting
dynamic upstreams"). The fallback is where the load balancer serves what an empty list means
(devenv.services.caddy_config).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devenv.errors import ConfigError
from devenv.runtime import probes

log = logging.getLogger(__name__)

SRV_TARGET = "target.tg.devenv.internal."
MAX_RECORDS = 25  # 25 records of 45 bytes fit the 1232-byte EDNS payload Go's resolver advertises
TYPE_A = 1
TYPE_SRV = 33
CLASS_IN = 1


@dataclass(frozen=True)
class TargetLists:
    """What the responder serves: each SRV name's target ports (in order), and the port a name answers
    while it has none (its fallback)."""

    targets: dict[str, tuple[int, ...]] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)

    def answers(self) -> dict[str, tuple[int, ...]]:
        """What each name answers: its targets, or its fallback when it has none."""
        names = {**dict.fromkeys(self.fallbacks, ()), **self.targets}
        return {
            name: ports or ((self.fallbacks[name],) if name in self.fallbacks else ())
            for name, ports in names.items()
        }


def write_lists(path: Path, lists: TargetLists) -> None:
    """Replace the lists file atomically (the responder never reads half a file)."""
    for name, ports in lists.targets.items():
        if len(ports) > MAX_RECORDS:
            raise ConfigError(
                f"{name}: {len(ports)} targets; the local load balancer serves at most {MAX_RECORDS} per list",
                f"run at most {MAX_RECORDS} tasks behind one target group locally",
            )
    document = {
        "targets": {normalize(name): list(ports) for name, ports in lists.targets.items()},
        "fallbacks": {normalize(name): port for name, port in lists.fallbacks.items()},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document))
    tmp.replace(path)


def read_lists(path: Path) -> TargetLists:
    """The lists file's content (FileNotFoundError when none was written)."""
    document = json.loads(path.read_text())
    return TargetLists(
        {name: tuple(int(p) for p in ports) for name, ports in document["targets"].items()},
        {name: int(port) for name, port in document["fallbacks"].items()},
    )


class _Lists:
    """The lists file as last read: read again whenever it was replaced (checked per query: a stat is
    cheap, and an answer is never older than the file). A missing or unreadable file keeps the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._answers: dict[str, tuple[int, ...]] = {}

    def answers(self) -> dict[str, tuple[int, ...]]:
        try:
            stat = os.stat(self.path)
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if seen != self._seen:
                self._answers = read_lists(self.path).answers()
                self._seen = seen
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("DNS responder: cannot read %s (%s); answering the last lists read", self.path, exc)
        return self._answers


def serve(sock: socket.socket, lists_path: Path) -> None:
    """Answer queries on `sock` from the lists at `lists_path`, until the process is stopped."""
    lists = _Lists(lists_path)
    while True:
        try:
            query, client = sock.recvfrom(4096)
            reply = answer(query, lists.answers())
            if reply is not None:
                sock.sendto(reply, client)
        except OSError as exc:  # one client's problem: serve on
            log.warning("DNS responder: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dns_responder", description=__doc__.split("\n")[0])
    parser.add_argument("--lists", type=Path, required=True, help="the target lists file (write_lists)")
    parser.add_argument("--port", type=int, required=True, help="the UDP port on 127.0.0.1 to answer on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as exc:
        print(
            f"dns_responder: cannot listen on udp 127.0.0.1:{args.port}: {exc} (pick a free port)",
            file=sys.stderr,
        )
        return 4
    serve(sock, args.lists)
    return 0


def command(lists_path: Path, port: int) -> list[str]:
    """The argv that runs the responder as a supervised child: this file as a script (`-P`: its folder not
    on the import path), so it starts in a fraction of a second, without importing what the
    `devenv.services` package assembles (a restart is that much shorter)."""
    return [
        sys.executable,
        "-P",
        __file__,
        "--lists",
        str(lists_path),
        "--port",
        str(port),
    ]


def ready_probe(port: int, timeout_s: float = 0.5) -> probes.Probe:
    """Passes once the responder answers a query (for `SRV_TARGET`'s address) on 127.0.0.1:`port`. The
    socket is connected, so a port nobody listens on yet fails the probe at once (the kernel's "port
    unreachable" reaches a connected UDP socket only) instead of after `timeout_s`."""

    def probe() -> probes.ProbeResult:
        query = struct.pack("!HHHHHH", 0x0DE5, 0x0100, 1, 0, 0, 0) + _encode_name(SRV_TARGET)
        query += struct.pack("!HH", TYPE_A, CLASS_IN)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout_s)
            try:
                sock.connect(("127.0.0.1", port))
                sock.send(query)
                reply = sock.recv(512)
            except OSError as exc:
                return probes.ProbeResult(False, f"udp 127.0.0.1:{port}: no DNS answer ({exc})")
        if reply[:2] != query[:2]:
            return probes.ProbeResult(False, f"udp 127.0.0.1:{port}: not a DNS answer to the query")
        return probes.ProbeResult(True, f"udp 127.0.0.1:{port} answers")

    return probe


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
    name = normalize(".".join(labels))
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


def normalize(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _encode_name(name: str) -> bytes:
    return (
        b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.rstrip(".").split(".")) + b"\0"
    )


if __name__ == "__main__":
    sys.exit(main())
