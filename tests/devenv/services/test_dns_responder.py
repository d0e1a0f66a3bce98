"""The SRV responder as it runs in the stack: its own process, over a real UDP socket, answering from the
target lists file (Caddy's use of it is covered in test_loadbalancer)."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devenv.errors import ConfigError
from devenv.runtime.ports import free_udp_port
from devenv.services import dns_responder
from devenv.services.dns_responder import MAX_RECORDS, SRV_TARGET, TargetLists, read_lists, write_lists
from tests.waiting import wait_for

TYPE_A, TYPE_SRV = 1, 33
NAME = "api.registered.tg.devenv.internal."


@dataclass
class Responder:
    lists: Path
    port: int
    process: subprocess.Popen[bytes]

    def start(self) -> None:
        self.process = subprocess.Popen(dns_responder.command(self.lists, self.port))
        wait_for(lambda: dns_responder.ready_probe(self.port)().ok, 15, 0.05)


@pytest.fixture
def responder(tmp_path: Path) -> Iterator[Responder]:
    lists = tmp_path / "targets.json"
    write_lists(lists, TargetLists())
    port = free_udp_port()
    made = Responder(lists, port, subprocess.Popen(dns_responder.command(lists, port)))
    wait_for(lambda: dns_responder.ready_probe(port)().ok, 15, 0.05)
    yield made
    made.process.kill()
    made.process.wait()


def ask(responder: Responder, name: str, qtype: int) -> tuple[int, list[bytes]]:
    """(rcode, each answer's rdata) for one query, as a stub resolver sends it."""
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, ("127.0.0.1", responder.port))
        reply = sock.recv(4096)
    ident, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    assert (ident, flags & 0x8000, qdcount) == (0x1234, 0x8000, 1)
    offset, rdatas = 12 + len(question) + 4, []
    for _ in range(ancount):
        rdlength = struct.unpack("!H", reply[offset + 10 : offset + 12])[0]
        rdatas.append(reply[offset + 12 : offset + 12 + rdlength])
        offset += 12 + rdlength
    return flags & 0xF, rdatas


def ports(responder: Responder, name: str) -> list[int]:
    return [struct.unpack("!HHH", rdata[:6])[2] for rdata in ask(responder, name, TYPE_SRV)[1]]


def test_srv_records_follow_the_target_list_file(responder: Responder) -> None:
    write_lists(responder.lists, TargetLists({"api.in-rotation.tg.devenv.internal": (8002, 8001)}))

    rcode, rdatas = ask(responder, "API.in-rotation.tg.devenv.internal.", TYPE_SRV)

    assert rcode == 0
    assert [struct.unpack("!HHH", rdata[:6]) for rdata in rdatas] == [(0, 1, 8002), (1, 1, 8001)]
    write_lists(responder.lists, TargetLists({"api.in-rotation.tg.devenv.internal": ()}))
    assert ask(responder, "api.in-rotation.tg.devenv.internal.", TYPE_SRV) == (0, [])


def test_unknown_names_are_nxdomain_and_the_target_is_loopback(responder: Responder) -> None:
    assert ask(responder, "other.tg.devenv.internal.", TYPE_SRV) == (3, [])
    assert ask(responder, SRV_TARGET, TYPE_A) == (0, [socket.inet_aton("127.0.0.1")])


def test_too_many_targets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at most"):
        write_lists(tmp_path / "targets.json", TargetLists({NAME: tuple(range(1, MAX_RECORDS + 2))}))
    assert not (tmp_path / "targets.json").exists()


def test_an_empty_list_answers_its_fallback(responder: Responder) -> None:
    """Go's resolver takes an empty SRV answer for "no such host": an empty list answers the fallback."""
    write_lists(responder.lists, TargetLists(fallbacks={NAME: 9000}))
    assert ports(responder, NAME) == [9000]
    write_lists(responder.lists, TargetLists({NAME: (8001,)}, {NAME: 9000}))
    assert ports(responder, NAME) == [8001]
    write_lists(responder.lists, TargetLists({NAME: ()}, {NAME: 9000}))
    assert ports(responder, NAME) == [9000]
    assert read_lists(responder.lists).targets[NAME] == ()  # the fallback is no target


def test_a_restarted_responder_answers_the_lists_it_answered_before(responder: Responder) -> None:
    """The lists live in the file, not in the process: a kill -9 and a restart lose none."""
    write_lists(responder.lists, TargetLists({NAME: (8001, 8002)}, {NAME: 9000}))
    assert ports(responder, NAME) == [8001, 8002]
    responder.process.send_signal(signal.SIGKILL)
    responder.process.wait()
    responder.start()
    assert ports(responder, NAME) == [8001, 8002]


def test_an_unreadable_file_keeps_the_last_lists(responder: Responder) -> None:
    write_lists(responder.lists, TargetLists({NAME: (8001,)}))
    assert ports(responder, NAME) == [8001]
    responder.lists.write_text("{not json")
    assert ports(responder, NAME) == [8001]
    responder.lists.unlink()
    assert ports(responder, NAME) == [8001]


def test_a_taken_port_is_a_clear_error(responder: Responder) -> None:
    taken = subprocess.run(
        dns_responder.command(responder.lists, responder.port), capture_output=True, text=True, timeout=30
    )
    assert taken.returncode == 4
    assert f"cannot listen on udp 127.0.0.1:{responder.port}" in taken.stderr
    assert "Traceback" not in taken.stderr


def test_the_ready_probe_fails_at_once_on_a_port_nobody_answers_then_passes(tmp_path: Path) -> None:
    port = free_udp_port()
    probe = dns_responder.ready_probe(port, timeout_s=30)
    before = probe()  # the kernel's "port unreachable", not 30 s of silence
    assert not before.ok and "refused" in before.detail.lower(), before.detail
    lists = tmp_path / "targets.json"
    write_lists(lists, TargetLists())
    process = subprocess.Popen(dns_responder.command(lists, port))
    try:
        wait_for(lambda: probe().ok, 15, 0.05)
    finally:
        process.kill()
        process.wait()
