"""What of an ALB the local load balancer mirrors, and the Caddy JSON config that mirrors it.

The realizer derives a `LoadBalancerSpec` from ELBv2 (listeners, target groups); `caddy_config` turns it
into the config `caddy run --config` loads. Targets are not part of it: they come and go in the target
lists the mirror's DNS responder serves (`devenv.services.dns_responder`, a process of its own), as ECS
registers and deregisters tasks (`devenv.services.loadbalancer`).

A forwarding listener has one `reverse_proxy` (`target_group_id(name)`) whose upstreams are an SRV lookup
(Caddy's dynamic upstreams) answered by that responder: the group's targets in rotation (known healthy),
round robin, with retries so a dying target costs no failed request. Target changes never touch (reload)
Caddy's config. A failed lookup (the responder down or restarting) keeps the last answer for
`SRV_GRACE_PERIOD_S` and then asks again, so the responder is never on the data path of a request: only
target changes wait for it.

An empty target list must never reach Caddy as an empty answer (Go calls it "no such host" and Caddy logs
an error per request), so each group has two internal servers on 127.0.0.1 (`FallbackPorts`), and the
responder answers their port while a list is empty:
- no target in rotation -> `fail_open`: a `reverse_proxy` (`fail_open_id(name)`) to every registered
  target, unchecked, as an ALB whose targets are all unhealthy routes to all of them;
- no target registered -> `no_target`: the ALB's own 503.
Health is decided by `devenv.services.loadbalancer` (Caddy's active checks do not run on dynamic
upstreams).

With an access log directory, each forwarding listener and its group's fail-open server write one JSON
line per request they handle to the group's access log (`access_log_path`), holding only what the ALB's
CloudWatch metrics need: the status sent, the target chosen (if any), the target's own status and its
time to response headers, and the port the server's empty target list answers. The metrics collector
reads them (`devenv.services.access_log`). A request that finds no target in rotation passes two
servers, each logging it; the fail-open server's line is the exact one (the real target, its status and
latency; or, with no target registered, the no-target server's address: the ALB's own 503), so a
listener line whose target is its fail-open port is not counted. Logging at the fail-open server is the
simpler of the exact ways: the other, mapping the fallback's answer back at the listener, would need the
inner target, status and latency carried back in response headers and stripped again. The no-target
server logs nothing: the fail-open server's line records its 503.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from devenv.errors import ConfigError

LOCAL_TLS_NAMES = ("localhost", "127.0.0.1")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Tries per request beyond the first: a target that died since the last health check is skipped.
PROXY_RETRIES = 2
# How long Caddy caches an SRV lookup: a target change reaches new requests within this.
SRV_REFRESH_S = 0.1
# How long Caddy keeps its last answer after a failed lookup before it asks again: no request waits for,
# or fails with, a responder that is down; a target change made meanwhile reaches Caddy within this.
SRV_GRACE_PERIOD_S = 1.0
SRV_DOMAIN = "tg.devenv.internal."
# What an ALB answers when its target group has no registered target.
NO_TARGET_BODY = "<html><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n"
# An access log rolls at this size (one older file kept, uncompressed): bounded disk, and a reader that
# looks every few seconds never misses a roll.
ACCESS_LOG_ROLL_MB = 16
ACCESS_LOGGER = "http.log.access"  # Caddy's access loggers; a server's is ACCESS_LOGGER.<its logger name>
# Per request: what the ALB metrics need, added to the access log entry once the handlers have run (a
# placeholder Caddy never set is logged as null: no target chosen, or no answer from it).
ACCESS_LOG_FIELDS = {
    "target": "{http.reverse_proxy.upstream.address}",
    "target_status": "{http.reverse_proxy.status_code}",
    "target_ms": "{http.reverse_proxy.upstream.latency_ms}",
}
# Fields of Caddy's access log entry the metrics do not read: not written at all (cheaper to write and
# to parse).
ACCESS_LOG_DROPPED = ("request", "resp_headers", "user_id", "bytes_read", "size", "duration")
# Per request, the port its server's empty target list answers (a constant of the server): a line whose
# target is that port was not answered by a target there (see the module's doc).
FAIL_OPEN_PORT_FIELD = "fail_open_port"  # on the listener's lines
NO_TARGET_PORT_FIELD = "no_target_port"  # on the fail-open server's lines


@dataclass(frozen=True)
class HealthCheck:
    """An ELBv2 target group's health check (the defaults are the ALB's for HTTP targets)."""

    path: str = "/"
    interval_s: float = 30.0
    timeout_s: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    success_codes: str = "200"  # the ALB matcher's HttpCode: "200", "200,202" or "200-299"

    def passes(self, status: int) -> bool:
        """Whether a health check answer with `status` counts as a success."""
        return status in success_code_set(self.success_codes)


@dataclass(frozen=True)
class TargetGroup:
    """An ELBv2 target group; targets are added at run time."""

    name: str
    health_check: HealthCheck = field(default_factory=HealthCheck)
    deregistration_delay_s: float = 300.0


@dataclass(frozen=True)
class Listener:
    """An ALB listener on a local port: forwards to `target_group`, or redirects to `redirect_to_port`
    (the HTTP -> HTTPS listener)."""

    port: int
    protocol: Literal["HTTP", "HTTPS"]
    target_group: str | None = None
    redirect_to_port: int | None = None
    redirect_status: int = 301


@dataclass(frozen=True)
class FallbackPorts:
    """A target group's internal servers: what its empty target lists answer (see the module's doc)."""

    fail_open: int
    no_target: int


@dataclass(frozen=True)
class LoadBalancerSpec:
    """The ALB to mirror: its listeners and the target groups they forward to."""

    name: str
    listeners: tuple[Listener, ...]
    target_groups: tuple[TargetGroup, ...]

    def target_group(self, name: str) -> TargetGroup:
        for group in self.target_groups:
            if group.name == name:
                return group
        raise ConfigError(
            f"load balancer {self.name!r} has no target group {name!r}",
            f"use one of: {', '.join(g.name for g in self.target_groups) or '(none defined)'}",
        )


def success_code_set(codes: str) -> set[int]:
    """The statuses an ALB matcher (`200`, `200,202`, `200-299`) accepts; ValueError on bad syntax."""
    accepted: set[int] = set()
    for part in codes.split(","):
        low, dash, high = part.strip().partition("-")
        if dash and not high:
            raise ValueError(f"{part.strip()!r} is a range with no end")
        first, last = int(low), int(high or low)
        if not 200 <= first <= last <= 499:
            raise ValueError(f"{part.strip()!r} is not a status or a range of statuses within 200-499")
        accepted.update(range(first, last + 1))
    return accepted


def target_group_id(name: str) -> str:
    """The `@id` of a target group's health-checked `reverse_proxy` handler."""
    return f"tg-{name}"


def fail_open_id(name: str) -> str:
    """The `@id` of a target group's fail-open handler (every registered target, no health checks)."""
    return f"tg-{name}-all"


def in_rotation_srv_name(name: str) -> str:
    """The SRV name listing a target group's targets in rotation."""
    return f"{name}.in-rotation.{SRV_DOMAIN}"


def registered_srv_name(name: str) -> str:
    """The SRV name listing every registered target of a target group."""
    return f"{name}.registered.{SRV_DOMAIN}"


def caddy_config(
    spec: LoadBalancerSpec,
    admin_port: int,
    storage_dir: Path,
    resolver: str,
    fallbacks: Mapping[str, FallbackPorts],
    access_log_dir: Path | None = None,
) -> dict[str, Any]:
    """Caddy's JSON config for `spec`: a server per listener on 127.0.0.1, the admin API on
    127.0.0.1:`admin_port`, certificates and Caddy's internal CA under `storage_dir`, target lists looked
    up from the DNS responder at `resolver` (HOST:PORT), and each forwarded group's internal servers on
    its `fallbacks` ports; with `access_log_dir`, one access log per forwarded target group there (none
    otherwise: nothing is written per request)."""
    _validate(spec)
    forwarded = [listener.target_group for listener in spec.listeners if listener.target_group]
    for name in forwarded:
        if name not in fallbacks:
            raise ConfigError(
                f"target group {name!r} has no fallback ports", "pass one FallbackPorts per group"
            )
    logged = access_log_dir is not None
    servers = {
        f"listener-{listener.port}": _server(spec, listener, resolver, fallbacks, logged)
        for listener in spec.listeners
    }
    for name in forwarded:
        servers.update(_fallback_servers(name, fallbacks[name], resolver, logged))
    logs: dict[str, Any] = {"default": {"level": "WARN"}}
    if access_log_dir is not None:
        logs["default"]["exclude"] = [ACCESS_LOGGER]
        for name in forwarded:
            logs[f"access-{name}"] = _access_log(name, access_log_path(access_log_dir, name))
    config: dict[str, Any] = {
        "admin": {"listen": f"127.0.0.1:{admin_port}", "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(storage_dir)},
        "logging": {"logs": logs},
        "apps": {"http": {"servers": servers}},
    }
    if any(listener.protocol == "HTTPS" for listener in spec.listeners):
        config["apps"]["tls"] = {
            "certificates": {"automate": list(LOCAL_TLS_NAMES)},
            "automation": {
                "policies": [{"subjects": list(LOCAL_TLS_NAMES), "issuers": [{"module": "internal"}]}]
            },
        }
        # Never touch the system trust store: clients trust the CA from the storage directory.
        config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    return config


def access_log_path(access_log_dir: Path, group: str) -> Path:
    """Where the access log of target group `group` is written (older lines roll to a sibling file)."""
    return access_log_dir / f"{group}.access.log"


def _access_log(group: str, path: Path) -> dict[str, Any]:
    """A log taking the access entries of the server forwarding to `group`: compact JSON lines, no
    level, time, logger or message keys, and only the fields the metrics read."""
    return {
        "level": "INFO",
        "include": [f"{ACCESS_LOGGER}.{group}"],
        "writer": {
            "output": "file",
            "filename": str(path),
            "roll_size_mb": ACCESS_LOG_ROLL_MB,
            "roll_keep": 1,
            "roll_gzip": False,
        },
        "encoder": {
            "format": "filter",
            "wrap": {"format": "json", "message_key": "", "level_key": "", "time_key": "", "name_key": ""},
            "fields": {name: {"filter": "delete"} for name in ACCESS_LOG_DROPPED},
        },
    }


def _log_fields(fallback_field: str, fallback_port: int) -> list[dict[str, Any]]:
    """`log_append` handlers that add ACCESS_LOG_FIELDS and the server's fallback port (as
    `fallback_field`) to the request's access log entry (placed before the proxy, they record on the way
    back, after it ran)."""
    fields = {**ACCESS_LOG_FIELDS, fallback_field: str(fallback_port)}
    return [{"handler": "log_append", "key": key, "value": value} for key, value in fields.items()]


def internal_ca_path(storage_dir: Path) -> Path:
    """Where Caddy writes its internal CA's root certificate (clients verify HTTPS listeners with it)."""
    return storage_dir / "pki" / "authorities" / "local" / "root.crt"


def _server(
    spec: LoadBalancerSpec,
    listener: Listener,
    resolver: str,
    fallbacks: Mapping[str, FallbackPorts],
    logged: bool,
) -> dict[str, Any]:
    server: dict[str, Any] = {
        "listen": [f"127.0.0.1:{listener.port}"],
        "automatic_https": {"disable": True},
        "protocols": ["h1"],
    }
    if listener.protocol == "HTTPS":
        server["tls_connection_policies"] = [{"default_sni": "localhost"}]
        server["protocols"] = ["h1", "h2"]  # as an ALB: HTTP/2 over TLS, no HTTP/3
    if listener.redirect_to_port is not None:
        location = f"https://{{http.request.host}}:{listener.redirect_to_port}{{http.request.uri}}"
        server["routes"] = [
            {
                "handle": [
                    {
                        "handler": "static_response",
                        "status_code": listener.redirect_status,
                        "headers": {"Location": [location]},
                    }
                ]
            }
        ]
        return server
    assert listener.target_group is not None  # _validate checked it
    group = spec.target_group(listener.target_group)
    fields = _log_fields(FAIL_OPEN_PORT_FIELD, fallbacks[group.name].fail_open) if logged else []
    server["routes"] = [
        {
            "handle": [
                *fields,
                _reverse_proxy(target_group_id(group.name), in_rotation_srv_name(group.name), resolver),
            ]
        }
    ]
    if logged:
        server["logs"] = {"default_logger_name": group.name}
    return server


def _fallback_servers(group: str, ports: FallbackPorts, resolver: str, logged: bool) -> dict[str, Any]:
    """The group's internal servers: fail-open (every registered target) and no-target (the ALB's 503).
    The listener in front is a trusted proxy: the client's X-Forwarded-* headers pass through. When
    `logged`, the fail-open server writes to the group's access log (the no-target server never does)."""
    internal = {"automatic_https": {"disable": True}, "protocols": ["h1"]}
    fields = _log_fields(NO_TARGET_PORT_FIELD, ports.no_target) if logged else []
    fail_open: dict[str, Any] = {
        **internal,
        "listen": [f"127.0.0.1:{ports.fail_open}"],
        "trusted_proxies": {"source": "static", "ranges": ["127.0.0.1/32"]},
        "routes": [
            {"handle": [*fields, _reverse_proxy(fail_open_id(group), registered_srv_name(group), resolver)]}
        ],
    }
    if logged:
        fail_open["logs"] = {"default_logger_name": group}
    return {
        f"fail-open-{group}": fail_open,
        f"no-target-{group}": {
            **internal,
            "listen": [f"127.0.0.1:{ports.no_target}"],
            "routes": [
                {
                    "handle": [
                        {
                            "handler": "static_response",
                            "status_code": 503,
                            "headers": {"Content-Type": ["text/html"]},
                            "body": NO_TARGET_BODY,
                        }
                    ]
                }
            ],
        },
    }


def _reverse_proxy(handler_id: str, srv_name: str, resolver: str) -> dict[str, Any]:
    return {
        "handler": "reverse_proxy",
        "@id": handler_id,
        "dynamic_upstreams": {
            "source": "srv",
            "name": srv_name,
            "refresh": _duration(SRV_REFRESH_S),
            "grace_period": _duration(SRV_GRACE_PERIOD_S),
            "resolver": {"addresses": [resolver]},
        },
        "load_balancing": {"selection_policy": {"policy": "round_robin"}, "retries": PROXY_RETRIES},
        # The SRV records name one host that only the responder knows (127.0.0.1).
        "transport": {"protocol": "http", "resolver": {"addresses": [resolver]}},
    }


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _validate(spec: LoadBalancerSpec) -> None:
    if not spec.listeners:
        raise ConfigError(f"load balancer {spec.name!r} has no listener", "give it at least one listener")
    for group in spec.target_groups:
        if not NAME_PATTERN.match(group.name):
            raise ConfigError(
                f"target group name {group.name!r} is not usable as a Caddy handler id",
                "use letters, digits, '-' and '_' only",
            )
        check = group.health_check
        if not check.path.startswith("/"):
            raise ConfigError(
                f"target group {group.name!r}: health check path {check.path!r} must start with /"
            )
        if check.interval_s <= 0 or check.timeout_s <= 0 or check.timeout_s > check.interval_s:
            raise ConfigError(
                f"target group {group.name!r}: health check timeout {check.timeout_s}s and interval "
                f"{check.interval_s}s must be > 0, with timeout <= interval",
                "fix HealthCheckTimeoutSeconds / HealthCheckIntervalSeconds",
            )
        try:
            success_code_set(check.success_codes)
        except ValueError as exc:
            raise ConfigError(
                f"target group {group.name!r}: health check matcher {check.success_codes!r}: {exc}",
                "give Matcher.HttpCode as a status (200), a list (200,202) or a range (200-299)",
            ) from None
        if check.healthy_threshold < 1 or check.unhealthy_threshold < 1:
            raise ConfigError(f"target group {group.name!r}: health check thresholds must be >= 1")
    ports = [listener.port for listener in spec.listeners]
    if len(set(ports)) != len(ports):
        raise ConfigError(
            f"load balancer {spec.name!r} has two listeners on one port", "give each its own port"
        )
    forwarded: set[str] = set()
    for listener in spec.listeners:
        if (listener.target_group is None) == (listener.redirect_to_port is None):
            raise ConfigError(
                f"listener on port {listener.port} must either forward to a target group or redirect",
                "set exactly one of target_group and redirect_to_port",
            )
        if listener.target_group is not None:
            spec.target_group(listener.target_group)
            if listener.target_group in forwarded:
                raise ConfigError(
                    f"target group {listener.target_group!r} is forwarded to by two listeners",
                    "the local mirror supports one forwarding listener per target group",
                )
            forwarded.add(listener.target_group)
