"""The ALB mirror: a real Caddy in front of real (tiny, in-process) HTTP targets on free ports."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devenv.errors import ConfigError, NotRunningError
from devenv.runtime import probes
from devenv.services import loadbalancer as lb
from devenv.services.caddy_config import (
    SRV_GRACE_PERIOD_S,
    FallbackPorts,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    TargetGroup,
    caddy_config,
    internal_ca_path,
)
from tests.ports import free_port

GROUP = "api"
SLOW_S = 1.0


class TargetServer(ThreadingHTTPServer):
    daemon_threads = True
    health_status = 200
    hits: Counter[str]


class TargetHandler(BaseHTTPRequestHandler):
    server: TargetServer

    def do_GET(self) -> None:
        if self.path == "/health":
            status = self.server.health_status
        else:
            self.server.hits[self.path] += 1
            status = 200
            if self.path == "/slow":
                time.sleep(SLOW_S)
                self.server.hits["finished /slow"] += 1
        body = json.dumps({"port": self.server.server_address[1], "path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class KeepAliveTargetHandler(TargetHandler):
    """A target that keeps the load balancer's connections open between requests."""

    protocol_version = "HTTP/1.1"


@dataclass
class Target:
    server: TargetServer
    thread: threading.Thread

    @property
    def dial(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_target() -> Iterator[Callable[[], Target]]:
    started: list[Target] = []

    def make() -> Target:
        server = TargetServer(("127.0.0.1", 0), TargetHandler)
        server.hits = Counter()
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        started.append(Target(server, thread))
        return started[-1]

    yield make
    for target in started:
        target.stop()


@dataclass
class MirrorProcesses:
    """Caddy and its DNS responder, as the realizer runs them (two processes, the responder first)."""

    files: lb.MirrorFiles
    resolver: subprocess.Popen[bytes]
    caddy: subprocess.Popen[bytes]

    def start_resolver(self) -> None:
        self.resolver = subprocess.Popen(lb.resolver_command(self.files))
        deadline = time.monotonic() + 15
        while not lb.resolver_ready_probe(self.files)().ok:
            assert self.resolver.poll() is None and time.monotonic() < deadline, "the responder did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        for process in (self.caddy, self.resolver):
            process.terminate()
            process.wait(timeout=10)


def start_mirror(
    spec: LoadBalancerSpec, admin_port: int, state_dir: Path, log: Path, access_log_dir: Path | None = None
) -> MirrorProcesses:
    """Write the mirror's files, start its responder and Caddy, and wait until Caddy is ready."""
    files = lb.write_config(spec, admin_port, state_dir, access_log_dir)
    resolver = subprocess.Popen(lb.resolver_command(files))
    with open(log, "wb") as output:
        caddy = subprocess.Popen(
            lb.caddy_command(files.config),
            env=lb.caddy_env(state_dir),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    processes = MirrorProcesses(files, resolver, caddy)
    ready = probes.all_of(lb.resolver_ready_probe(files), lb.ready_probe(lb.admin_url(admin_port), spec))
    deadline = time.monotonic() + 15
    while not ready().ok:
        if caddy.poll() is not None or resolver.poll() is not None or time.monotonic() > deadline:
            processes.stop()
            pytest.fail(f"the mirror did not start: {ready().detail}; {log.read_text()[-3000:]}")
        time.sleep(0.05)
    return processes


@dataclass
class Alb:
    spec: LoadBalancerSpec
    admin: str
    http_port: int
    https_port: int
    redirect_port: int
    steady_port: int
    state_dir: Path
    log: Path  # Caddy's own output
    processes: MirrorProcesses

    @property
    def group(self) -> TargetGroup:
        return self.spec.target_group(GROUP)

    def mirror(self, group: TargetGroup) -> lb.TargetGroupMirror:
        return lb.TargetGroupMirror(self.admin, group, self.processes.files.target_lists)


@pytest.fixture(scope="module")
def alb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alb]:
    """Caddy with an HTTP listener and an HTTPS one (plus its HTTP -> HTTPS redirect listener)."""
    state_dir = tmp_path_factory.mktemp("caddy")
    http_port, https_port, redirect_port, steady_port, admin_port = (free_port() for _ in range(5))
    check = HealthCheck(
        path="/health", interval_s=0.2, timeout_s=0.2, healthy_threshold=1, unhealthy_threshold=1
    )
    spec = LoadBalancerSpec(
        name="alb",
        listeners=(
            Listener(http_port, "HTTP", target_group=GROUP),
            Listener(https_port, "HTTPS", target_group="secure"),
            Listener(redirect_port, "HTTP", redirect_to_port=https_port),
            Listener(steady_port, "HTTP", target_group="steady"),
        ),
        target_groups=(
            TargetGroup(GROUP, check, deregistration_delay_s=30),
            TargetGroup("secure", check, deregistration_delay_s=30),
            # checked once a minute: between two checks only retries keep a dead target from failing requests
            TargetGroup("steady", HealthCheck("/health", 60, 5, 1, 1), deregistration_delay_s=30),
        ),
    )
    log = state_dir / "caddy.log"
    processes = start_mirror(spec, admin_port, state_dir, log)
    admin = lb.admin_url(admin_port)
    try:
        yield Alb(spec, admin, http_port, https_port, redirect_port, steady_port, state_dir, log, processes)
    finally:
        processes.stop()


@pytest.fixture
def mirrors(alb: Alb) -> Iterator[dict[str, lb.TargetGroupMirror]]:
    """A fresh mirror per target group; every target is deregistered afterwards."""
    made = {group.name: alb.mirror(group) for group in alb.spec.target_groups}
    yield made
    for mirror in made.values():
        for dial in lb.registered_targets(mirror):
            lb.deregister_target(mirror, dial)


@pytest.fixture
def api(mirrors: dict[str, lb.TargetGroupMirror]) -> lb.TargetGroupMirror:
    return mirrors[GROUP]


def get(port: int, path: str = "/v1") -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if response.status == 200 else {"body": raw.decode()}
    finally:
        conn.close()


def ports_hit(alb: Alb, requests: int, port: int | None = None) -> Counter[int]:
    seen: Counter[int] = Counter()
    for _ in range(requests):
        status, body = get(port or alb.http_port)
        assert status == 200, body
        seen[int(str(body["port"]))] += 1
    return seen


def caddy_config_now(alb: Alb) -> object:
    with lb.LOCAL_HTTP.open(f"{alb.admin}/config/", timeout=10) as response:
        return json.load(response)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---- config -----------------------------------------------------------------------------------------------


def test_config_mirrors_the_target_group(tmp_path: Path) -> None:
    spec = LoadBalancerSpec(
        "alb",
        (Listener(18080, "HTTP", target_group="web"),),
        (TargetGroup("web", HealthCheck("/healthz", 15, 4, 3, 2, "200")),),
    )
    config = caddy_config(
        spec, 12019, tmp_path / "data", "127.0.0.1:1053", {"web": FallbackPorts(18081, 18082)}
    )
    assert config["admin"]["listen"] == "127.0.0.1:12019"
    assert config["storage"] == {"module": "file_system", "root": str(tmp_path / "data")}
    server = config["apps"]["http"]["servers"]["listener-18080"]
    assert server["listen"] == ["127.0.0.1:18080"]
    handler = server["routes"][0]["handle"][0]
    assert handler["@id"] == "tg-web"
    assert "upstreams" not in handler  # targets come from DNS: changing them never reloads Caddy
    assert handler["dynamic_upstreams"] == {
        "source": "srv",
        "name": "web.in-rotation.tg.devenv.internal.",
        "refresh": "100ms",
        "grace_period": "1000ms",  # a failed lookup keeps the last answer (never "no upstreams")
        "resolver": {"addresses": ["127.0.0.1:1053"]},
    }
    assert handler["load_balancing"]["retries"] >= 1
    # an empty list answers these internal servers' ports (never an empty DNS answer)
    fail_open_server = config["apps"]["http"]["servers"]["fail-open-web"]
    assert fail_open_server["listen"] == ["127.0.0.1:18081"]
    fail_open = fail_open_server["routes"][0]["handle"][0]
    assert fail_open["@id"] == "tg-web-all"
    assert fail_open["dynamic_upstreams"]["name"] == "web.registered.tg.devenv.internal."
    no_target = config["apps"]["http"]["servers"]["no-target-web"]
    assert no_target["listen"] == ["127.0.0.1:18082"]
    assert no_target["routes"][0]["handle"][0]["status_code"] == 503
    assert "tls" not in config["apps"]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (LoadBalancerSpec("alb", (), ()), "has no listener"),
        (
            LoadBalancerSpec("alb", (Listener(1, "HTTP", target_group="nope"),), (TargetGroup("web"),)),
            "has no target group 'nope'",
        ),
        (
            LoadBalancerSpec("alb", (Listener(1, "HTTP"),), ()),
            "must either forward to a target group or redirect",
        ),
        (
            LoadBalancerSpec(
                "alb",
                (Listener(1, "HTTP", target_group="web"), Listener(1, "HTTPS", target_group="web")),
                (TargetGroup("web"),),
            ),
            "two listeners on one port",
        ),
        (
            LoadBalancerSpec("alb", (Listener(1, "HTTP", target_group="a b"),), (TargetGroup("a b"),)),
            "not usable as a Caddy handler id",
        ),
        (
            LoadBalancerSpec(
                "alb",
                (Listener(1, "HTTP", target_group="web"),),
                (TargetGroup("web", HealthCheck("/", 5, 10)),),
            ),
            "timeout <= interval",
        ),
        (
            LoadBalancerSpec(
                "alb",
                (Listener(1, "HTTP", target_group="web"),),
                (TargetGroup("web", HealthCheck("/", success_codes="200-abc")),),
            ),
            "matcher '200-abc'",
        ),
        (
            LoadBalancerSpec(
                "alb",
                (Listener(1, "HTTP", target_group="web"),),
                (TargetGroup("web", HealthCheck("/", success_codes="500")),),
            ),
            "within 200-499",
        ),
        (
            LoadBalancerSpec(
                "alb",
                (Listener(1, "HTTP", target_group="web"),),
                (TargetGroup("web", HealthCheck("/", success_codes="200-")),),
            ),
            "a range with no end",
        ),
    ],
)
def test_bad_specs_are_config_errors(spec: LoadBalancerSpec, problem: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(")):
        caddy_config(spec, 12019, tmp_path, "127.0.0.1:1053", {})


# ---- a running Caddy -----------------------------------------------------------------------------------------


def test_no_target_is_a_503_and_costs_caddy_no_lookup_error(alb: Alb, api: lb.TargetGroupMirror) -> None:
    assert lb.registered_targets(api) == []
    for _ in range(5):
        status, body = get(alb.http_port)
        assert status == 503 and "503 Service Temporarily Unavailable" in str(body["body"])
    # an empty target list is an answer, not a failed SRV lookup Caddy logs on every request
    assert "dynamic upstreams" not in alb.log.read_text()


def test_requests_are_spread_over_registered_targets(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    assert lb.register_target(api, a.dial).state == "healthy"  # healthy_threshold 1: in rotation at once
    lb.register_target(api, b.dial)
    lb.register_target(api, b.dial)  # idempotent
    assert lb.registered_targets(api) == [a.dial, b.dial]
    assert lb.targets_in_rotation(api) == [a.dial, b.dial]

    seen = ports_hit(alb, 10)

    assert set(seen) == {a.port, b.port}
    statuses = lb.sync_target_health(api)
    assert [(s.dial, s.state, s.in_rotation, s.in_flight) for s in statuses] == [
        (a.dial, "healthy", True, 0),
        (b.dial, "healthy", True, 0),
    ]


def test_a_deregistered_target_gets_no_new_requests(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    lb.register_target(api, a.dial)
    lb.register_target(api, b.dial)
    assert set(ports_hit(alb, 4)) == {a.port, b.port}

    lb.deregister_target(api, a.dial)
    lb.deregister_target(api, a.dial)  # idempotent
    hits_before = a.server.hits["/v1"]

    assert set(ports_hit(alb, 10)) == {b.port}
    assert a.server.hits["/v1"] == hits_before
    assert lb.registered_targets(api) == [b.dial]
    assert lb.targets_in_rotation(api) == [b.dial]


def test_drain_lets_in_flight_requests_finish(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    lb.register_target(api, a.dial)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, alb.http_port, "/slow")
        wait_for(lambda: a.server.hits["/slow"] == 1, "the slow request to reach target a")
        assert [(s.dial, s.in_flight) for s in lb.sync_target_health(api)] == [(a.dial, 1)]
        lb.register_target(api, b.dial)

        waited = lb.drain_target(api, a.dial)
        assert a.server.hits["finished /slow"] == 1  # drain waited for the request in flight

        status, body = slow.result(timeout=10)
    assert (status, body["port"]) == (200, a.port)  # the in-flight request finished on the drained target
    assert waited < api.group.deregistration_delay_s  # returned once nothing was in flight, not after 30 s
    assert lb.registered_targets(api) == [b.dial]
    assert set(ports_hit(alb, 4)) == {b.port}


def test_a_target_failing_its_health_check_never_enters_rotation(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    a.server.health_status = 500
    lb.register_target(api, b.dial)
    status = lb.register_target(api, a.dial)

    assert (status.state, status.in_rotation) == ("unhealthy", False)
    assert "500" in status.detail
    assert set(ports_hit(alb, 10)) == {b.port}
    lb.register_target(api, make_target().dial)  # a target change must not put the bad target back
    assert a.port not in ports_hit(alb, 10)


def test_a_404_on_the_health_path_counts_as_unhealthy(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    a.server.health_status = 404
    lb.register_target(api, b.dial)
    assert lb.register_target(api, a.dial).state == "unhealthy"
    assert set(ports_hit(alb, 6)) == {b.port}


@pytest.mark.parametrize(
    ("codes", "passing", "failing"),
    [
        ("200", {200}, {204, 301}),
        ("200,204", {200, 204}, {201, 302}),
        ("200-299", {200, 204, 299}, {300, 404}),
    ],
)
def test_the_matcher_accepts_what_the_alb_would(codes: str, passing: set[int], failing: set[int]) -> None:
    check = HealthCheck("/health", success_codes=codes)
    assert all(check.passes(status) for status in passing)
    assert not any(check.passes(status) for status in failing)


def test_a_target_that_turns_unhealthy_leaves_rotation_at_its_next_check(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    lb.register_target(api, a.dial)
    lb.register_target(api, b.dial)
    assert set(ports_hit(alb, 4)) == {a.port, b.port}

    a.server.health_status = 503
    wait_for(
        lambda: {s.dial: s.state for s in lb.sync_target_health(api)}[a.dial] == "unhealthy",
        "target a out of rotation after its next check",
        timeout_s=3 * api.group.health_check.interval_s,
    )
    statuses = {s.dial: s for s in lb.sync_target_health(api)}

    assert (statuses[a.dial].state, statuses[a.dial].in_rotation) == ("unhealthy", False)
    assert lb.targets_in_rotation(api) == [b.dial]
    assert set(ports_hit(alb, 6)) == {b.port}


@pytest.mark.slow
def test_target_changes_never_break_keep_alive_connections(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    """A rolling deployment under steady traffic fails no request: target changes do not touch Caddy's
    config, so no reload closes the client's idle keep-alive connection."""
    a, b = make_target(), make_target()
    lb.register_target(api, a.dial)
    config_before = caddy_config_now(alb)
    done = threading.Event()
    outcomes: Counter[str] = Counter()
    connections = 0

    def client() -> None:
        nonlocal connections
        conn = None
        while not done.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", alb.http_port, timeout=10)
                connections += 1
            try:
                conn.request("GET", "/v1")
                response = conn.getresponse()
                response.read()
                outcomes["ok" if response.status == 200 else f"status {response.status}"] += 1
            except (OSError, http.client.HTTPException) as exc:
                outcomes[type(exc).__name__] += 1
                conn.close()
                conn = None
            time.sleep(0.005)  # idle between requests, as a keep-alive client is
        if conn is not None:
            conn.close()

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(client)
        for _ in range(20):
            lb.register_target(api, b.dial)
            lb.deregister_target(api, b.dial)
        done.set()
        running.result(timeout=10)

    assert outcomes["ok"] >= 40  # traffic ran throughout
    assert outcomes == Counter(ok=outcomes["ok"])  # zero errors
    assert connections == 1  # one keep-alive connection throughout
    assert b.server.hits["/v1"] > 0  # the changes did route traffic to b and back
    assert caddy_config_now(alb) == config_before  # never reloaded


def test_the_alb_routes_on_while_its_dns_responder_is_down(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    """With the responder killed, Caddy keeps its last lists through every failed lookup (no "no upstreams"
    503) and routes on over its open connections to the targets (a target that keeps connections alive,
    as the proxy does: opening a new one resolves the SRV target's name at the responder), and a change
    made meanwhile reaches Caddy once the responder is back (it reads the lists from the file, so nothing
    was lost with the process)."""
    a, b = make_target(), make_target()
    a.server.RequestHandlerClass = KeepAliveTargetHandler
    lb.register_target(api, a.dial)
    assert ports_hit(alb, 4) == Counter({a.port: 4})
    alb.processes.resolver.kill()
    alb.processes.resolver.wait()
    try:
        seen: Counter[int] = Counter()
        deadline = time.monotonic() + 3 * SRV_GRACE_PERIOD_S  # several failed lookups, each retried later
        while time.monotonic() < deadline:
            seen.update(ports_hit(alb, 1))  # each a 200
        assert seen == Counter({a.port: seen.total()})
        lb.register_target(api, b.dial)  # in the file; Caddy cannot learn it yet
        assert set(ports_hit(alb, 6)) == {a.port}
    finally:
        alb.processes.start_resolver()
    wait_for(lambda: b.port in ports_hit(alb, 4), "the change made while the responder was down")
    assert "SRV lookup failed; using previously cached" in alb.log.read_text()


def test_thresholds_follow_the_alb_state_machine(alb: Alb, make_target: Callable[[], Target]) -> None:
    """As an ALB: a new target is healthy after one passing check, fails out after `unhealthy_threshold`
    failures in a row, and comes back after `healthy_threshold` passes in a row."""
    group = TargetGroup(GROUP, HealthCheck("/health", 10, 1, healthy_threshold=2, unhealthy_threshold=2))
    mirror = alb.mirror(group)
    a, b = make_target(), make_target()
    b.server.health_status = 500
    try:
        assert lb.register_target(mirror, a.dial).in_rotation  # one passing check at registration
        assert lb.register_target(mirror, b.dial).state == "initial"  # one failure of two
        clock = time.monotonic()

        def states_after_check() -> dict[int, tuple[str, bool]]:
            nonlocal clock
            clock += 10  # one interval later
            statuses = lb.sync_target_health(mirror, now=clock)
            return {int(s.dial.rsplit(":", 1)[1]): (s.state, s.in_rotation) for s in statuses}

        not_due = lb.sync_target_health(mirror, now=clock)  # no new check
        assert [s.state for s in not_due] == ["healthy", "initial"]
        b.server.health_status = 200
        assert states_after_check() == {a.port: ("healthy", True), b.port: ("healthy", True)}  # one pass
        a.server.health_status = 500
        assert states_after_check()[a.port] == ("healthy", True)  # one failure of two
        assert states_after_check()[a.port] == ("unhealthy", False)
        a.server.health_status = 200
        assert states_after_check()[a.port] == ("unhealthy", False)  # one pass of two
        assert states_after_check()[a.port] == ("healthy", True)
    finally:
        lb.deregister_target(mirror, a.dial)
        lb.deregister_target(mirror, b.dial)


def test_fail_open_when_every_target_is_unhealthy(
    alb: Alb, api: lb.TargetGroupMirror, make_target: Callable[[], Target]
) -> None:
    a, b = make_target(), make_target()
    a.server.health_status = b.server.health_status = 500
    lb.register_target(api, a.dial)
    lb.register_target(api, b.dial)
    assert [s.state for s in lb.sync_target_health(api)] == ["unhealthy", "unhealthy"]
    assert lb.targets_in_rotation(api) == []

    seen = ports_hit(alb, 10)  # asserts every request succeeded

    assert set(seen) == {a.port, b.port}  # routed to all, as an ALB fails open
    assert "dynamic upstreams" not in alb.log.read_text()

    a.server.health_status = 200  # one recovers: traffic goes to the healthy one only
    wait_for(
        lambda: lb.sync_target_health(api)[0].state == "healthy", "target a to pass its check", timeout_s=5
    )
    assert set(ports_hit(alb, 6)) == {a.port}


def test_a_dying_target_costs_no_failed_request(
    alb: Alb, mirrors: dict[str, lb.TargetGroupMirror], make_target: Callable[[], Target]
) -> None:
    steady = mirrors["steady"]
    a, b = make_target(), make_target()
    lb.register_target(steady, a.dial)
    lb.register_target(steady, b.dial)
    assert set(ports_hit(alb, 4, alb.steady_port)) == {a.port, b.port}

    a.stop()  # killed between two health checks (a minute apart): connections are refused now

    assert set(ports_hit(alb, 10, alb.steady_port)) == {b.port}  # every request succeeded, retried on b


def test_https_listener_serves_with_the_internal_ca(
    alb: Alb, mirrors: dict[str, lb.TargetGroupMirror], make_target: Callable[[], Target]
) -> None:
    a = make_target()
    lb.register_target(mirrors["secure"], a.dial)
    ca = internal_ca_path(alb.state_dir / "data")
    wait_for(ca.exists, "Caddy's internal CA")
    context = ssl.create_default_context(cafile=str(ca))
    for host in ("127.0.0.1", "localhost"):
        conn = http.client.HTTPSConnection(host, alb.https_port, context=context, timeout=10)
        conn.request("GET", "/v1")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["port"] == a.port
        conn.close()
    unverified = http.client.HTTPSConnection("127.0.0.1", alb.https_port, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        unverified.request("GET", "/v1")  # the system trust store does not know the devenv CA


def test_http_listener_redirects_to_https(alb: Alb) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", alb.redirect_port, timeout=10)
    conn.request("GET", "/v1/models?limit=2")
    response = conn.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://127.0.0.1:{alb.https_port}/v1/models?limit=2"


def test_unknown_target_group_is_a_config_error(alb: Alb) -> None:
    with pytest.raises(ConfigError, match="no target group 'nope'"):
        lb.register_target(alb.mirror(TargetGroup("nope")), "127.0.0.1:1")


def test_ready_probe_needs_every_listener(alb: Alb) -> None:
    assert lb.ready_probe(alb.admin, alb.spec)().ok
    missing = Listener(free_port(), "HTTP", target_group=GROUP)
    spec = LoadBalancerSpec("alb", (*alb.spec.listeners, missing), alb.spec.target_groups)
    result = lb.ready_probe(alb.admin, spec)()
    assert not result.ok
    assert str(missing.port) in result.detail


def test_admin_client_says_when_caddy_is_not_running(tmp_path: Path) -> None:
    mirror = lb.TargetGroupMirror(lb.admin_url(free_port()), TargetGroup(GROUP), tmp_path / "targets.json")
    with pytest.raises(NotRunningError, match="does not answer"):
        lb.registered_targets(mirror)
