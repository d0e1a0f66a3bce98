"""What an experiment talks to: the proxy's URL and management token, AWS API clients, and (locally) the
fault proxies standing at the Aurora and ElastiCache endpoints.

local: the emulator `devenv up` runs (credentials test/test) and the `aurora`/`elasticache` services' control
URLs from the state dir. aws: the default boto3 session (its credentials and region) and the stack outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devenv.errors import TargetError
from devenv.runtime.state import StateDir
from devenv.stack_names import NAME_PREFIX
from devenv.targets import aws_api, dashboard_link, endpoints
from devenv.targets.aws_api import AwsApi
from devenv.targets.endpoints import Endpoint, resolve
from devenv.targets.management import ManagementClient

CLUSTER = NAME_PREFIX  # the ECS cluster of the stack
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Target:
    name: str
    endpoint: Endpoint
    make_client: Callable[[str], Any]
    fault_proxies: dict[str, str] = field(default_factory=dict)
    cluster: str = CLUSTER
    emulator: str | None = None  # the local cloud's URL (None on AWS)
    dashboard: str | None = None  # the dashboard page `devenv up` serves (None on AWS)
    # scalable target -> its SuspendedState before the run suspended it (restored by scaling.resume)
    scaling_before: dict[str, dict[str, bool]] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.make_client(service)
        return self._clients[service]

    @property
    def api(self) -> AwsApi:
        return AwsApi(self.name, self.client, self.emulator)

    @property
    def management(self) -> ManagementClient:
        """The proxy's management API (a ManagementError, exit 2, when it refuses or does not answer)."""
        return ManagementClient(self.endpoint.url, self.endpoint.management_token)

    def fault_proxy(self, endpoint: str) -> str:
        if endpoint not in self.fault_proxies:
            raise TargetError(
                f"no fault proxy for {endpoint} on the {self.name} target",
                "run `devenv up -d` (the realized stack starts one at the Aurora and ElastiCache endpoints)",
            )
        return self.fault_proxies[endpoint]


def connect(
    target: endpoints.Target, state: StateDir, url: str | None, token: str | None, region: str | None
) -> Target:
    """The target, resolved; TargetError (exit 2) when it cannot be reached or found."""
    endpoint = resolve(target, state, url=url, management_token=token, region=region)
    if not endpoint.management_token:
        raise TargetError(
            f"no management token for {endpoint.url}",
            "pass --management-token or set MANAGEMENT_TOKEN (the data-loss check reads the audit log)",
        )
    api = aws_api.connect(target, state, region)
    if api.emulator is None:
        return Target("aws", endpoint, api.make_client)
    if urlsplit(endpoint.url).hostname not in LOOPBACK:
        raise TargetError(
            f"the local target must be on 127.0.0.1, not {endpoint.url}",
            "drop --url, or use --target aws for a remote stack",
        )
    services: dict[str, Any] = state.read().get("services") or {}
    proxies = {
        name: str(services[name]["control_url"])
        for name in ("aurora", "elasticache")
        if (services.get(name) or {}).get("control_url")
    }
    return Target(
        "local",
        endpoint,
        api.make_client,
        proxies,
        emulator=api.emulator,
        dashboard=dashboard_link.served(state),
    )
