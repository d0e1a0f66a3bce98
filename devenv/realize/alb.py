"""The deployed ALB, read from the emulator's ELBv2 API, realized as the Caddy mirror.

Listeners map to local ports (HTTP -> `alb_port`, HTTPS -> `alb_https_port`); each target group's health
check, thresholds and deregistration delay come from the API. The mirror is two supervised processes:
Caddy (`alb`) and the DNS responder it finds its targets through (`alb-dns`, serving the target lists
file); the control plane here only rewrites that file, so the ALB routes on without it. Targets are registered in the mirror and
in the emulator's ELBv2 (so `describe_target_health` tells the truth) as tasks come and go. With
`access_log_dir`, the mirror logs each request there for the ALB's CloudWatch metrics
(`devenv.realize.alb_metrics`).

With a `time_scale` above 1 the health-check interval is divided by it like every CloudWatch period, so a
target turns unhealthy in the same share of an alarm's window as on AWS (10 s checks, 3 failures: half a
CloudWatch minute), never more often than once a second (MIN_HEALTH_CHECK_INTERVAL_S) and with a timeout
of at most the interval; thresholds and the deregistration delay are AWS's.
"""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.errors import DevenvError
from devenv.realize import control_client
from devenv.runtime.ports import free_port
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec, Supervisor
from devenv.services import loadbalancer
from devenv.services.caddy_config import HealthCheck, Listener, LoadBalancerSpec, TargetGroup

ALB_SERVICE = "alb"
ALB_DNS_SERVICE = "alb-dns"
MIN_HEALTH_CHECK_INTERVAL_S = 1.0  # a compressed check still leaves a busy 2-core machine time to answer


def health_check_timing(interval_s: float, timeout_s: float, time_scale: float) -> tuple[float, float]:
    """(interval, timeout) of a target group's health check as the mirror runs it under time_scale."""
    if time_scale <= 1:
        return interval_s, timeout_s
    interval = max(MIN_HEALTH_CHECK_INTERVAL_S, interval_s / time_scale)
    interval = min(interval, interval_s)
    return interval, min(timeout_s, interval)


class UnsupportedLoadBalancer(DevenvError):
    """A load balancer shape the mirror cannot realize (said, not skipped)."""


@dataclass
class AlbMirror:
    """The ALB mirror for the one ALB the stack has."""

    elbv2: Any
    endpoint: str
    supervisor: Supervisor
    state_dir: Path
    http_port: int
    https_port: int
    access_log_dir: Path | None = None
    time_scale: float = 1.0
    mirrors: dict[str, loadbalancer.TargetGroupMirror] = field(default_factory=dict)
    _reported: dict[tuple[str, str], str] = field(default_factory=dict)
    url: str | None = None
    arn: str | None = None  # the mirrored ALB's, once the mirror runs
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def started(self) -> bool:
        return ALB_SERVICE in self.supervisor.services

    def ensure(self) -> None:
        """Start the mirror once the emulator has an ALB with listeners (no-op afterwards)."""
        if self.started:
            return
        balancers = [
            lb
            for lb in self.elbv2.describe_load_balancers()["LoadBalancers"]
            if lb.get("Type", "application") == "application"
        ]
        if not balancers:
            return
        if len(balancers) > 1:
            names = ", ".join(lb["LoadBalancerName"] for lb in balancers)
            raise UnsupportedLoadBalancer(
                f"the local cloud mirrors one ALB; the emulator has {len(balancers)}: {names}"
            )
        spec, by_arn = self._spec(balancers[0])
        admin_port = free_port()
        work = self.state_dir / "alb"
        if self.access_log_dir is not None:  # a new mirror counts from zero: no lines of an earlier one
            shutil.rmtree(self.access_log_dir, ignore_errors=True)
        files = loadbalancer.write_config(spec, admin_port, work, self.access_log_dir)
        admin = loadbalancer.admin_url(admin_port)
        self.supervisor.add(
            ServiceSpec(
                name=ALB_DNS_SERVICE,
                argv=loadbalancer.resolver_command(files),
                ready=loadbalancer.resolver_ready_probe(files),
                restart=RestartPolicy(mode="always"),
                extra={"resolver": f"udp 127.0.0.1:{files.resolver_port}"},
            )
        )
        self.supervisor.add(
            ServiceSpec(
                name=ALB_SERVICE,
                argv=loadbalancer.caddy_command(files.config),
                env=loadbalancer.caddy_env(work),
                ready=loadbalancer.ready_probe(admin, spec),
                ports={f"{listener.protocol.lower()}": listener.port for listener in spec.listeners}
                | {"admin": admin_port},
                url=f"http://localhost:{self.http_port}"
                if any(listener.protocol == "HTTP" for listener in spec.listeners)
                else f"https://localhost:{self.https_port}",
                depends_on=(ALB_DNS_SERVICE,),
                restart=RestartPolicy(mode="always"),
                extra={"load_balancer": balancers[0]["LoadBalancerName"]},
            )
        )
        self.url = self.supervisor.services[ALB_SERVICE].spec.url
        self.mirrors = {
            arn: loadbalancer.TargetGroupMirror(admin, group, files.target_lists)
            for arn, group in by_arn.items()
        }
        self.arn = balancers[0]["LoadBalancerArn"]

    def _spec(self, balancer: dict[str, Any]) -> tuple[LoadBalancerSpec, dict[str, TargetGroup]]:
        groups: dict[str, TargetGroup] = {}
        for tg in self.elbv2.describe_target_groups(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "TargetGroups"
        ]:
            attributes = {
                a["Key"]: a["Value"]
                for a in self.elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])[
                    "Attributes"
                ]
            }
            interval_s, timeout_s = health_check_timing(
                float(tg.get("HealthCheckIntervalSeconds") or 30),
                float(tg.get("HealthCheckTimeoutSeconds") or 5),
                self.time_scale,
            )
            groups[tg["TargetGroupArn"]] = TargetGroup(
                name=re.sub(r"[^A-Za-z0-9_-]", "-", tg["TargetGroupName"]).strip("-") or "tg",
                health_check=HealthCheck(
                    path=tg.get("HealthCheckPath") or "/",
                    interval_s=interval_s,
                    timeout_s=timeout_s,
                    healthy_threshold=int(tg.get("HealthyThresholdCount") or 5),
                    unhealthy_threshold=int(tg.get("UnhealthyThresholdCount") or 2),
                    success_codes=str(tg.get("Matcher", {}).get("HttpCode", "200")),
                ),
                deregistration_delay_s=float(attributes.get("deregistration_delay.timeout_seconds", 300)),
            )
        listeners = []
        local_port = {"HTTP": self.http_port, "HTTPS": self.https_port}
        for listener in self.elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]:
            protocol = listener["Protocol"]
            if protocol not in local_port:
                raise UnsupportedLoadBalancer(
                    f"listener protocol {protocol} on port {listener['Port']} is not mirrored"
                )
            action = listener["DefaultActions"][0]
            if action["Type"] == "forward":
                arn = (
                    action.get("TargetGroupArn")
                    or action["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"]
                )
                listeners.append(Listener(local_port[protocol], protocol, target_group=groups[arn].name))
            elif action["Type"] == "redirect":
                redirect = action["RedirectConfig"]
                to_https = redirect.get("Protocol") == "HTTPS"
                listeners.append(
                    Listener(
                        local_port[protocol],
                        protocol,
                        redirect_to_port=self.https_port if to_https else local_port[protocol],
                        redirect_status=301 if redirect.get("StatusCode", "HTTP_301") == "HTTP_301" else 302,
                    )
                )
            else:
                raise UnsupportedLoadBalancer(
                    f"listener action {action['Type']} on port {listener['Port']} is not mirrored"
                )
        return LoadBalancerSpec(
            balancer["LoadBalancerName"], tuple(listeners), tuple(groups.values())
        ), groups

    # -- what the realizer calls ----------------------------------------------------------

    def register(self, target_group_arn: str, port: int) -> None:
        mirror = self.mirrors.get(target_group_arn)
        if mirror is None:
            return
        with self._lock:
            loadbalancer.register_target(mirror, f"127.0.0.1:{port}")
        self.elbv2.register_targets(
            TargetGroupArn=target_group_arn, Targets=[{"Id": "127.0.0.1", "Port": port}]
        )

    def drain(self, target_group_arn: str, port: int) -> None:
        """No new requests at once; returns when in-flight ones are done or the delay has passed."""
        mirror = self.mirrors.get(target_group_arn)
        if mirror is None:
            return
        with self._lock:
            loadbalancer.deregister_target(mirror, f"127.0.0.1:{port}")
        self._report(
            target_group_arn, f"127.0.0.1:{port}", "draining", "Target deregistration is in progress"
        )
        loadbalancer.drain_target(mirror, f"127.0.0.1:{port}")
        self.elbv2.deregister_targets(
            TargetGroupArn=target_group_arn, Targets=[{"Id": "127.0.0.1", "Port": port}]
        )

    def register_again(self, target_group_arn: str, port: int) -> None:
        """Register a serving target in the emulator again, with the health the mirror sees (the
        emulator restarted from a saved local cloud older than the target)."""
        mirror = self.mirrors.get(target_group_arn)
        if mirror is None:
            return
        dial = f"127.0.0.1:{port}"
        self.elbv2.register_targets(
            TargetGroupArn=target_group_arn, Targets=[{"Id": "127.0.0.1", "Port": port}]
        )
        with self._lock:
            self._reported.pop((target_group_arn, dial), None)
            health = mirror.health.get(dial)
            if health is not None:
                self._report(target_group_arn, dial, health.state, health.detail)

    def target_state(self, target_group_arn: str, port: int) -> str | None:
        """initial, healthy or unhealthy, as the mirror's health checks have it (None: not registered)."""
        mirror = self.mirrors.get(target_group_arn)
        health = mirror.health.get(f"127.0.0.1:{port}") if mirror else None
        return health.state if health else None

    def health(self, target_group_arn: str, port: int) -> str:
        """HEALTHY, UNHEALTHY or UNKNOWN (not yet judged), as ECS reports a task behind the ALB."""
        state = self.target_state(target_group_arn, port)
        if state is None or state == "initial":
            return "UNKNOWN"
        return "HEALTHY" if state == "healthy" else "UNHEALTHY"

    def unhealthy_reason(self, target_group_arn: str, port: int) -> str:
        """Why the health checks fail a target, in the words ECS quotes from the ELB (a code mismatch,
        a timeout, or a failed connection), from what the mirror's last check saw."""
        mirror = self.mirrors.get(target_group_arn)
        health = mirror.health.get(f"127.0.0.1:{port}") if mirror else None
        detail = health.detail if health else ""
        code = re.search(r" -> (\d{3}) ", detail)
        if code:
            return f"Health checks failed with these codes: [{code.group(1)}]"
        if "timed out" in detail:
            return "Request timed out"
        return "Health checks failed"

    def tick(self) -> None:
        """Run the health-check state machine of every target group (call often)."""
        if (
            ALB_SERVICE not in self.supervisor.services
            or self.supervisor.services[ALB_SERVICE].state != "running"
        ):
            return
        with self._lock:
            for arn, mirror in self.mirrors.items():
                for status in loadbalancer.sync_target_health(mirror):
                    self._report(arn, status.dial, status.state, status.detail)

    def _report(self, target_group_arn: str, dial: str, state: str, detail: str) -> None:
        """Tell the emulator what the mirror's health checks saw (describe_target_health shows it)."""
        if self._reported.get((target_group_arn, dial)) == state:
            return
        try:
            control_client.report_target_health(self.endpoint, target_group_arn, dial, state, detail)
        except OSError:
            return  # reported again on the next tick
        self._reported[(target_group_arn, dial)] = state
