"""The LLM Proxy's development companion as a native service: the OpenAI-compatible mock upstream.

The proxy and dispatcher themselves are not services here: they are the stack's ECS tasks, realized
from what was deployed (devenv.realize.realizer).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from devenv.config import Settings
from devenv.errors import ConfigError
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec


def write_secrets(state: StateDir, values: dict[str, str]) -> None:
    """Replace run/secrets.json, readable by its owner only."""
    state.ensure()
    path = state.run / "secrets.json"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)


def mock_upstream_args(settings: Settings, port: int) -> list[str]:
    """`mock-upstream`'s arguments: where it listens and how slowly it answers (the mock_upstream_*
    settings), the same for the native process and the container."""
    return [
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ttft", settings.mock_upstream_ttft,
        "--inter-token-ms", str(settings.mock_upstream_inter_token_ms),
        "--latency", settings.mock_upstream_latency,
    ]  # fmt: skip


def mock_upstream_spec(settings: Settings, port: int) -> ServiceSpec:
    return ServiceSpec(
        name="mock-upstream",
        argv=[sys.executable, "-m", "llmproxy", "mock-upstream", *mock_upstream_args(settings, port)],
        ports={"http": port},
        url=f"http://127.0.0.1:{port}/v1",
        ready=probes.http(f"http://127.0.0.1:{port}/health"),
        ready_timeout_s=settings.ready_timeout_s,
        stop_timeout_s=settings.stop_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )


def source_dir(settings: Settings) -> Path:
    """The llmproxy package the native ECS tasks run and `devenv watch` watches: the `llmproxy_dir`
    setting, else the package devenv itself imports (a checkout's llmproxy/, or the installed wheel's)."""
    if settings.llmproxy_dir is not None:
        return settings.llmproxy_dir
    spec = importlib.util.find_spec("llmproxy")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the llmproxy package is not importable here", "reinstall devenv, or set llmproxy_dir to a copy"
        )
    return Path(spec.origin).parent


def installed_copy(source: Path) -> bool:
    """True for a package inside an installed environment (a wheel): edits there are not a checkout's and
    a reinstall replaces them."""
    return "site-packages" in source.parts or "dist-packages" in source.parts
