"""The ALB mirror's access log: written by a real Caddy for real requests, tallied as the ALB counts them;
and the tail that reads it across rolls."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devenv.services import loadbalancer as lb
from devenv.services.access_log import LogTail, tally
from devenv.services.caddy_config import (
    FallbackPorts,
    HealthCheck,
    Listener,
    LoadBalancerSpec,
    TargetGroup,
    access_log_path,
    caddy_config,
)
from tests.devenv.services.test_loadbalancer import (  # noqa: F401 (make_target: a fixture)
    Target,
    get,
    make_target,
    start_mirror,
)
from tests.ports import free_port
from tests.waiting import wait_for

GROUP = "logged"


@pytest.fixture(scope="module")
def logged_alb(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LoadBalancerSpec, lb.TargetGroupMirror, Path]]:
    """Caddy with one HTTP listener whose requests are logged: (spec, its group's mirror, log directory)."""
    state_dir = tmp_path_factory.mktemp("caddy-logged")
    port, admin_port = free_port(), free_port()
    check = HealthCheck("/health", interval_s=0.2, timeout_s=0.2, healthy_threshold=1, unhealthy_threshold=1)
    spec = LoadBalancerSpec(
        "alb", (Listener(port, "HTTP", target_group=GROUP),), (TargetGroup(GROUP, check, 5),)
    )
    logs = state_dir / "access"
    processes = start_mirror(spec, admin_port, state_dir, state_dir / "caddy.log", logs)
    mirror = lb.TargetGroupMirror(
        lb.admin_url(admin_port), spec.target_group(GROUP), processes.files.target_lists
    )
    try:
        yield spec, mirror, logs
    finally:
        processes.stop()


def test_each_request_is_tallied_as_the_alb_counts_it(
    logged_alb: tuple[LoadBalancerSpec, lb.TargetGroupMirror, Path],
    make_target: Callable[[], Target],  # noqa: F811 (the fixture imported above)
) -> None:
    spec, mirror, logs = logged_alb
    port = spec.listeners[0].port
    tail = LogTail(access_log_path(logs, GROUP))
    tail.read_lines()  # earlier requests

    assert get(port)[0] == 503  # no target registered: the mirror answers itself (no-target server)
    target = make_target()
    lb.register_target(mirror, target.dial)
    assert [get(port)[0] for _ in range(3)] == [200] * 3
    assert get(port, "/v1/models")[0] == 200
    target.server.health_status = 500  # the target's own 500 on its health path
    assert get(port, "/health")[0] == 500
    assert [s.state for s in lb.sync_target_health(mirror, time.monotonic() + 1)] == ["unhealthy"]
    assert lb.targets_in_rotation(mirror) == []
    status, body = get(port)  # fail-open: routed to the unhealthy target, which answers
    assert (status, body["port"]) == (200, target.port)
    lb.deregister_target(mirror, target.dial)
    stopped = make_target()
    lb.register_target(mirror, stopped.dial)
    stopped.stop()  # in rotation, refusing connections: chosen, never answers (Caddy's 502)
    assert get(port)[0] == 502
    lb.deregister_target(mirror, stopped.dial)
    dead = f"127.0.0.1:{free_port()}"  # registered, fails its check: fail-open chooses it, no answer
    lb.register_target(mirror, dead)
    assert lb.targets_in_rotation(mirror) == []
    assert get(port)[0] == 502
    lb.deregister_target(mirror, dead)

    lines: list[bytes] = []

    def all_logged() -> bool:  # Caddy logs after answering
        lines.extend(tail.read_lines())
        return len(lines) >= 9 + 3  # three requests passed the fail-open server too, each logging them

    wait_for(all_logged)
    lines.extend(tail.read_lines())
    assert len(lines) == 9 + 3  # each line read once
    counted = tally(lines)
    assert counted.requests == 8  # a target was chosen: not for the first request
    assert counted.target_codes == {"2XX": 5, "5XX": 1}  # fail-open's 200 is the target's
    assert counted.elb_codes == {"5XX": 3}  # no target; two targets that never answered
    assert len(counted.target_times_s) == 6 and all(0 < t < 5 for t in counted.target_times_s)
    assert counted.unreadable == 0


def test_the_tail_follows_a_roll_and_waits_for_a_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "tg.access.log"
    tail = LogTail(path)
    assert tail.read_lines() == []  # not written yet
    with path.open("ab") as log:
        log.write(b'{"status":200}\n{"status":')
        log.flush()
        assert tail.read_lines() == [b'{"status":200}']
        log.write(b"201}\n")
        log.write(b'{"status":202}\n')  # written before the roll, read after it
    os.rename(path, tmp_path / "tg.access-rolled.log")
    path.write_bytes(b'{"status":203}\n')
    assert tail.read_lines() == [b'{"status":201}', b'{"status":202}', b'{"status":203}']
    assert tail.read_lines() == []
    tail.close()


@pytest.mark.parametrize(
    ("line", "requests", "target", "elb"),
    [
        (b'{"status":200,"target":"tcp/h:1","target_status":200,"target_ms":1.5}', 1, {"2XX": 1}, {}),
        (b'{"status":503,"target":null,"target_status":null,"target_ms":null}', 0, {}, {"5XX": 1}),
        # the listener's line of a fail-open request: the fail-open server's line counts it
        (b'{"status":200,"target":"h:7","target_status":200,"target_ms":3,"fail_open_port":"7"}', 0, {}, {}),
        # the fail-open server's lines: a target's answer, and the no-target server's (the ALB's own 503)
        (
            b'{"status":200,"target":"h:1","target_status":200,"target_ms":2,"no_target_port":"8"}',
            1,
            {"2XX": 1},
            {},
        ),
        (
            b'{"status":503,"target":"h:8","target_status":503,"target_ms":1,"no_target_port":"8"}',
            0,
            {},
            {"5XX": 1},
        ),
        (b'{"status":502,"target":"tcp/h:1","target_status":null,"target_ms":null}', 1, {}, {"5XX": 1}),
        (b'{"status":0,"target":"tcp/h:1","target_status":null}', 1, {}, {}),  # the client left
    ],
)
def test_a_line_counts_where_the_alb_would(
    line: bytes, requests: int, target: dict[str, int], elb: dict[str, int]
) -> None:
    counted = tally([line])
    assert (counted.requests, dict(counted.target_codes), dict(counted.elb_codes)) == (requests, target, elb)


def test_a_line_that_is_no_entry_is_counted_as_unreadable() -> None:
    counted = tally([b"not json", b'["a list"]', b'{"status":"x"}'])
    assert counted.unreadable == 3 and counted.requests == 0


def test_no_access_log_is_configured_without_a_directory(tmp_path: Path) -> None:
    spec = LoadBalancerSpec(
        "alb", (Listener(free_port(), "HTTP", target_group=GROUP),), (TargetGroup(GROUP),)
    )
    config = caddy_config(spec, free_port(), tmp_path, "127.0.0.1:53", {GROUP: FallbackPorts(1, 2)})
    assert list(config["logging"]["logs"]) == ["default"]
    servers = config["apps"]["http"]["servers"]
    for server in (servers[f"listener-{spec.listeners[0].port}"], servers[f"fail-open-{GROUP}"]):
        handlers = server["routes"][0]["handle"]
        assert [h["handler"] for h in handlers] == ["reverse_proxy"]  # nothing added to the request path
        assert "logs" not in server
