"""A load test's own project and pool of proxy tokens: made through the management API when a test
starts and revoked when it stops, as set-up that is never counted.

Called from the locustfile's test_start/test_stop hooks (inside Locust's gevent process, for a headless
run, each run of the web UI, and the compose Locust master alike), so it imports only the management
client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devenv.targets.management import ManagementClient

TOKEN_LIFETIME_MIN = 24 * 60  # longer than any profile (the soak runs 30 min); revoked at the end anyway


@dataclass
class TokenPool:
    """The run's project and its tokens (each as the API created it: `id`, `token`, `expires_at`)."""

    project_id: str
    tokens: list[dict[str, Any]] = field(default_factory=list)


def create_pool(client: ManagementClient, run_id: str, upstream_key: str, size: int) -> TokenPool:
    """A fresh project `loadtest-<run_id>` with `size` tokens (at least one)."""
    project = client.create_project(f"loadtest-{run_id}", upstream_key)
    pool = TokenPool(str(project["id"]))
    pool.tokens = [client.create_token(pool.project_id, TOKEN_LIFETIME_MIN) for _ in range(max(1, size))]
    return pool


def release(client: ManagementClient, pool: TokenPool) -> int:
    """Revoke the pool's tokens; how many the API revoked."""
    return client.revoke_project_tokens(pool.project_id)
