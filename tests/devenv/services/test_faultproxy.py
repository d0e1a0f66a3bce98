"""The fault proxy in front of a real Redis and Postgres: pass-through, cut, refuse, latency, bad input."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from devenv.errors import NotRunningError, UsageError
from devenv.services import faultproxy
from devenv.services.faultproxy import process as faultproxy_process
from tests.ports import free_port


def start_proxy(upstream_port: int) -> tuple[subprocess.Popen[bytes], int, str]:
    listen, control = free_port(), free_port()
    child = subprocess.Popen(
        faultproxy.command(f"127.0.0.1:{listen}", f"127.0.0.1:{upstream_port}", f"127.0.0.1:{control}"),
        stderr=subprocess.PIPE,
    )
    control_url = f"http://127.0.0.1:{control}"
    ready = faultproxy.ready_probe(control_url)
    deadline = time.monotonic() + 10
    while not ready().ok:
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"fault proxy did not start: {child.stderr.read().decode() if child.stderr else ''}")
        time.sleep(0.05)
    return child, listen, control_url


def stop_proxy(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    assert child.wait(timeout=5) == 0


@pytest.fixture(scope="module")
def redis_proxy(redis_url: str) -> Iterator[tuple[int, str]]:
    """(listen port, control URL) of a fault proxy in front of the session's Redis."""
    upstream = urlsplit(redis_url).port
    assert upstream is not None
    child, listen, control_url = start_proxy(upstream)
    yield listen, control_url
    stop_proxy(child)


@pytest.fixture(autouse=True)
def _no_fault_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "redis_proxy" in request.fixturenames:
        faultproxy.clear(request.getfixturevalue("redis_proxy")[1])


def resilient_client(port: int) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 12),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def test_redis_passes_through(redis_proxy: tuple[int, str]) -> None:
    port, control_url = redis_proxy
    client = redis.Redis(host="127.0.0.1", port=port)
    client.set("faultproxy:pass", "through")
    assert client.get("faultproxy:pass") == b"through"
    big = b"x" * 3_000_000  # bigger than one read chunk, both ways
    client.set("faultproxy:big", big)
    assert client.get("faultproxy:big") == big
    status = faultproxy.status(control_url)
    assert status["connections"] >= 1
    assert status["fault"] is None
    client.close()


def test_cut_drops_connections_and_a_retrying_client_reconnects(redis_proxy: tuple[int, str]) -> None:
    port, control_url = redis_proxy
    plain = redis.Redis(host="127.0.0.1", port=port, retry=Retry(ExponentialBackoff(), 0))
    resilient = resilient_client(port)
    assert resilient.ping()
    before = faultproxy.status(control_url)["total_connections"]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(plain.blpop, ["faultproxy:never"], 10)  # in flight while we cut
        deadline = time.monotonic() + 5
        while faultproxy.status(control_url)["connections"] < 2:
            assert time.monotonic() < deadline, "the blocking client never connected"
            time.sleep(0.02)

        answer = faultproxy.cut(control_url)

        assert answer["cut"] >= 2
        assert answer["connections"] == 0
        with pytest.raises(redis.ConnectionError):
            waiting.result(timeout=5)  # its in-flight command lost its connection
    assert resilient.ping() is True  # reconnects through the proxy: new connections pass
    assert faultproxy.status(control_url)["total_connections"] > before


def test_refuse_fails_new_connections_for_the_window(redis_proxy: tuple[int, str]) -> None:
    port, control_url = redis_proxy
    held = redis.Redis(host="127.0.0.1", port=port)
    assert held.ping()

    answer = faultproxy.refuse(control_url, 1.0)

    assert answer["fault"]["kind"] == "refuse"
    assert answer["listening"] is False
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert held.ping() is True  # an open connection is untouched by refuse
    deadline = time.monotonic() + 5
    while True:  # the window ends by itself
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the proxy still refuses after its window"
            time.sleep(0.05)
    assert redis.Redis(host="127.0.0.1", port=port).ping() is True
    assert faultproxy.status(control_url)["fault"] is None


def test_clear_ends_refuse_early(redis_proxy: tuple[int, str]) -> None:
    port, control_url = redis_proxy
    faultproxy.refuse(control_url, 60)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert faultproxy.clear(control_url)["listening"] is True
    assert redis.Redis(host="127.0.0.1", port=port).ping() is True


def test_latency_delays_each_round_trip(redis_proxy: tuple[int, str]) -> None:
    port, control_url = redis_proxy
    client = redis.Redis(host="127.0.0.1", port=port)
    assert client.ping()
    faultproxy.add_latency(control_url, 150)
    started = time.monotonic()
    assert client.ping()
    assert time.monotonic() - started >= 0.3  # 150 ms on the way in and 150 ms on the way out
    status = faultproxy.status(control_url)
    assert status["fault"] == {"kind": "latency", "latency_ms": 150.0, "remaining_s": None}


def test_delayed_chunks_keep_their_order(redis_proxy: tuple[int, str]) -> None:
    port, control_url = redis_proxy
    client = redis.Redis(host="127.0.0.1", port=port)
    faultproxy.add_latency(control_url, 20)
    value = bytes(range(256)) * 8192  # 2 MB: many chunks in flight at once, each delayed
    pipe = client.pipeline(transaction=False)
    for i in range(3):
        pipe.set(f"faultproxy:order:{i}", value[i:])
        pipe.get(f"faultproxy:order:{i}")
    replies = pipe.execute()
    assert replies[1::2] == [value[i:] for i in range(3)]


def test_timed_latency_expires(redis_proxy: tuple[int, str]) -> None:
    _port, control_url = redis_proxy
    answer = faultproxy.add_latency(control_url, 50, seconds=0.3)
    assert answer["fault"]["kind"] == "latency"
    assert 0 < answer["fault"]["remaining_s"] <= 0.3
    deadline = time.monotonic() + 5
    while faultproxy.status(control_url)["fault"] is not None:
        assert time.monotonic() < deadline, "a timed fault did not expire"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"kind": "explode"}', "unknown fault kind 'explode'"),
        (b'{"kind": "refuse"}', "refuse needs duration_s"),
        (b'{"kind": "refuse", "duration_s": -1}', "duration_s must be a number > 0"),
        (b'{"kind": "refuse", "duration_s": Infinity}', "duration_s must be a number > 0"),
        (b'{"kind": "latency", "latency_ms": "slow"}', "latency needs latency_ms"),
        (b'{"kind": "cut", "duration_s": 3}', "unexpected field(s) for cut: duration_s"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{not json", "not valid JSON"),
    ],
)
def test_bad_control_input_is_a_400_with_a_clear_error(
    redis_proxy: tuple[int, str], body: bytes, error: str
) -> None:
    _port, control_url = redis_proxy
    request = urllib.request.Request(f"{control_url}/faults", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 400
    problem = json.load(raised.value)
    assert error in problem["error"]
    assert "hint" in problem
    assert faultproxy.status(control_url)["fault"] is None


@pytest.mark.parametrize(
    "request_head",
    [b"POST /faults HTTP/1.1\r\nContent-Length: lots\r\n\r\n", b"GARBAGE\r\n\r\n"],
    ids=["bad-content-length", "bad-request-line"],
)
def test_malformed_http_is_a_400(redis_proxy: tuple[int, str], request_head: bytes) -> None:
    control = urlsplit(redis_proxy[1])
    with socket.create_connection((control.hostname, control.port), timeout=5) as conn:
        conn.sendall(request_head)
        reply = b"".join(iter(lambda: conn.recv(4096), b""))  # the proxy closes after its answer
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"malformed HTTP request" in reply


def test_client_raises_usage_error_for_bad_values(redis_proxy: tuple[int, str]) -> None:
    with pytest.raises(UsageError, match="latency_ms"):
        faultproxy.add_latency(redis_proxy[1], -5)


def test_client_says_when_the_proxy_is_not_running() -> None:
    with pytest.raises(NotRunningError, match="does not answer"):
        faultproxy.status(f"http://127.0.0.1:{free_port()}")


def test_bad_address_flag_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        faultproxy_process.main(
            ["--listen", "nowhere", "--upstream", "127.0.0.1:1", "--control", "127.0.0.1:2"]
        )
    assert exited.value.code == 2
    assert "'nowhere' is not HOST:PORT" in capsys.readouterr().err


def test_postgres_through_the_proxy_survives_a_cut(postgres_dsn: str) -> None:
    upstream = urlsplit(postgres_dsn)
    assert upstream.port is not None
    child, listen, control_url = start_proxy(upstream.port)
    netloc = upstream.netloc.rsplit(":", 1)[0] + f":{listen}"
    proxied = urlunsplit(upstream._replace(netloc=netloc))

    async def scenario() -> None:
        conn = await asyncpg.connect(proxied)
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert faultproxy.cut(control_url)["cut"] == 1
        with pytest.raises((asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionError)):
            await conn.fetchval("SELECT 1")
        again = await asyncpg.connect(proxied)
        assert await again.fetchval("SELECT 2") == 2
        await again.close()
        faultproxy.refuse(control_url, 30)
        with pytest.raises(OSError):
            await asyncpg.connect(proxied, timeout=2)
        faultproxy.clear(control_url)
        last = await asyncpg.connect(proxied)
        await last.close()

    try:
        asyncio.run(scenario())
    finally:
        stop_proxy(child)
