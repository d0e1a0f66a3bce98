"""The SRV responder over a real UDP socket (Caddy's use of it is covered in test_loadbalancer)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from devenv.errors import ConfigError
from devenv.services.dns_responder import MAX_RECORDS, SRV_TARGET, SrvResponder

TYPE_A, TYPE_SRV = 1, 33


@pytest.fixture
def responder() -> Iterator[SrvResponder]:
    made = SrvResponder()
    yield made
    made.close()


def ask(responder: SrvResponder, name: str, qtype: int) -> tuple[int, list[bytes]]:
    """(rcode, each answer's rdata) for one query, as a stub resolver sends it."""
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", qtype, 1)
    host, port = responder.address.split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, (host, int(port)))
        reply = sock.recv(4096)
    ident, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    assert (ident, flags & 0x8000, qdcount) == (0x1234, 0x8000, 1)
    offset, rdatas = 12 + len(question) + 4, []
    for _ in range(ancount):
        rdlength = struct.unpack("!H", reply[offset + 10 : offset + 12])[0]
        rdatas.append(reply[offset + 12 : offset + 12 + rdlength])
        offset += 12 + rdlength
    return flags & 0xF, rdatas


def test_srv_records_follow_the_target_list(responder: SrvResponder) -> None:
    responder.set_targets("api.in-rotation.tg.devenv.internal.", [8002, 8001])

    rcode, rdatas = ask(responder, "API.in-rotation.tg.devenv.internal.", TYPE_SRV)

    assert rcode == 0
    assert [struct.unpack("!HHH", rdata[:6]) for rdata in rdatas] == [(0, 1, 8002), (1, 1, 8001)]
    responder.set_targets("api.in-rotation.tg.devenv.internal", [])
    assert ask(responder, "api.in-rotation.tg.devenv.internal.", TYPE_SRV) == (0, [])


def test_unknown_names_are_nxdomain_and_the_target_is_loopback(responder: SrvResponder) -> None:
    assert ask(responder, "other.tg.devenv.internal.", TYPE_SRV) == (3, [])
    assert ask(responder, SRV_TARGET, TYPE_A) == (0, [socket.inet_aton("127.0.0.1")])


def test_too_many_targets_is_refused(responder: SrvResponder) -> None:
    with pytest.raises(ConfigError, match="at most"):
        responder.set_targets("api.registered.tg.devenv.internal.", list(range(1, MAX_RECORDS + 2)))


def test_an_empty_list_answers_its_fallback(responder: SrvResponder) -> None:
    """Go's resolver takes an empty SRV answer for "no such host": an empty list answers the fallback."""
    name = "api.registered.tg.devenv.internal."
    responder.set_fallback(name, 9000)
    assert [struct.unpack("!HHH", r[:6])[2] for r in ask(responder, name, TYPE_SRV)[1]] == [9000]
    responder.set_targets(name, [8001])
    assert [struct.unpack("!HHH", r[:6])[2] for r in ask(responder, name, TYPE_SRV)[1]] == [8001]
    responder.set_targets(name, [])
    assert [struct.unpack("!HHH", r[:6])[2] for r in ask(responder, name, TYPE_SRV)[1]] == [9000]
    assert responder.targets(name) == []  # the fallback is no target
