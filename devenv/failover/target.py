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
from devenv.targets import endpoints
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
    # scalable target -> its SuspendedState before the run suspended it (restored by scaling.resume)
    scaling_before: dict[str, dict[str, bool]] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.make_client(service)
        return self._clients[service]

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
    if target == endpoints.Target.aws:
        import boto3

        session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        return Target("aws", endpoint, session.client)
    if urlsplit(endpoint.url).hostname not in LOOPBACK:
        raise TargetError(
            f"the local target must be on 127.0.0.1, not {endpoint.url}",
            "drop --url, or use --target aws for a remote stack",
        )
    snapshot = state.read()
    services: dict[str, Any] = snapshot.get("services") or {}
    aws_env = (snapshot.get("facts") or {}).get("aws_env") or {}
    emulator = aws_env.get("AWS_ENDPOINT_URL") or (services.get("emulator") or {}).get("url")
    if not emulator:
        raise TargetError(
            "the local stack has no emulator", "start the whole stack with `devenv up -d` (not --infra-only)"
        )

    def make_client(service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=emulator,
            region_name=aws_env.get("AWS_REGION") or region or "us-east-1",
            aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY", "test"),
        )

    proxies = {
        name: str(services[name]["control_url"])
        for name in ("aurora", "elasticache")
        if (services.get(name) or {}).get("control_url")
    }
    return Target("local", endpoint, make_client, proxies)
