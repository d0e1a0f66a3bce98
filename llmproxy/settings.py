"""Environment configuration of the proxy and the dispatcher.

Names follow the upstream LLM Proxy and the seed's ECS mapping (MANAGEMENT_TOKEN, DATABASE_URL,
REDIS_CACHE_URL, REDIS_EVENT_URL, LOG_LEVEL). A missing or invalid setting raises ConfigError, which
the entry points print as one line and exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_PROVIDERS_FILE = Path(__file__).parent / "config" / "api_providers.yaml"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it and says how to fix it."""


@dataclass(frozen=True)
class AllowList:
    """Which /v1 paths, methods and models the proxy forwards (empty models = any model)."""

    endpoints: tuple[str, ...]
    methods: frozenset[str]
    models: frozenset[str]

    def path_allowed(self, path: str) -> bool:
        return any(path == e or path.startswith(e + "/") for e in self.endpoints)


@dataclass(frozen=True)
class RedisSettings:
    url: str
    ca_file: str | None
    timeout: float


@dataclass(frozen=True)
class ProxySettings:
    listen_host: str
    listen_port: int
    management_token: str
    database_url: str
    database_pool_size: int
    database_connect_timeout: float
    encryption_key: str
    upstream_url: str
    request_timeout: float
    connect_timeout: float
    cache_enabled: bool
    cache_redis: RedisSettings
    cache_key_prefix: str
    cache_max_body_bytes: int
    event_redis: RedisSettings
    stream_key: str
    stream_max_len: int
    event_buffer_size: int
    event_batch_size: int
    event_replay_window: float
    event_monitor_interval: float
    event_flush_timeout: float
    token_cache_ttl: float
    rate_limit_rpm: int | None
    drain_delay: float
    drain_timeout: float
    allow: AllowList
    log_level: str
    log_format: str


@dataclass(frozen=True)
class DispatcherSettings:
    database_url: str
    database_connect_timeout: float
    event_redis: RedisSettings
    stream_key: str
    consumer_group: str
    consumer_name: str
    batch_size: int
    block_ms: int
    claim_idle_ms: int
    claim_interval: float
    jsonl_path: str | None
    log_level: str
    log_format: str


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _require(env: Mapping[str, str], name: str, hint: str) -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigError(f"{name} is not set: {hint}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    text = raw.removesuffix("s") if raw.endswith("s") and not raw.endswith("ms") else raw
    scale = 1.0
    if text.endswith("ms"):
        text, scale = text[:-2], 0.001
    try:
        value = float(text) * scale
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number: set it to e.g. {default}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} is below the minimum {minimum}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer: set it to e.g. {default}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} is below the minimum {minimum}")
    return value


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")


def _listen(env: Mapping[str, str]) -> tuple[str, int]:
    raw = _get(env, "LISTEN_ADDR") or ":8080"
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"LISTEN_ADDR={raw!r} is not HOST:PORT or :PORT (e.g. :8080 or 127.0.0.1:8080)")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def _redis(env: Mapping[str, str], name: str, fallback: str) -> RedisSettings:
    url = _get(env, name) or _get(env, fallback)
    if url is None:
        raise ConfigError(f"{name} is not set: give a redis:// or rediss:// URL (or set {fallback})")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name}={url!r} must start with redis://, rediss:// or unix://")
    ca_file = _get(env, "REDIS_CA_FILE")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"REDIS_CA_FILE={ca_file!r} does not exist: point it at a PEM CA bundle")
    return RedisSettings(url=url, ca_file=ca_file, timeout=_number(env, "REDIS_TIMEOUT", 0.5, 0.01))


def _database_url(env: Mapping[str, str]) -> str:
    url = _require(env, "DATABASE_URL", "give a postgres://user:password@host:port/db URL")
    if not url.startswith(("postgres://", "postgresql://")):
        raise ConfigError(f"DATABASE_URL must start with postgres:// or postgresql:// (got {url[:20]!r}...)")
    return url


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def load_allow_list(env: Mapping[str, str]) -> AllowList:
    """The allow-list from API_CONFIG_PATH (YAML, upstream format) overridden by ALLOWED_* variables."""
    path = Path(_get(env, "API_CONFIG_PATH") or DEFAULT_PROVIDERS_FILE)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"API_CONFIG_PATH={path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"API_CONFIG_PATH={path}: invalid YAML ({exc})") from None
    provider = _get(env, "API_PROVIDER") or "openai"
    try:
        api = document["apis"][provider]
        endpoints = tuple(str(e) for e in api.get("allowed_endpoints") or ())
        methods = tuple(str(m).upper() for m in api.get("allowed_methods") or ("GET", "POST", "OPTIONS"))
        models = tuple(str(m) for m in api.get("allowed_models") or ())
    except (KeyError, TypeError, AttributeError):
        raise ConfigError(
            f"API_CONFIG_PATH={path}: expected apis.{provider}.allowed_endpoints"
            f" (see {DEFAULT_PROVIDERS_FILE})"
        ) from None
    if raw := _get(env, "ALLOWED_ENDPOINTS"):
        endpoints = _csv(raw)
    if raw := _get(env, "ALLOWED_METHODS"):
        methods = tuple(m.upper() for m in _csv(raw))
    if raw := _get(env, "ALLOWED_MODELS"):
        models = _csv(raw)
    if not endpoints or any(not e.startswith("/v1/") for e in endpoints):
        raise ConfigError(
            "allowed endpoints must be a non-empty list of paths under /v1/ (ALLOWED_ENDPOINTS)"
        )
    return AllowList(endpoints=endpoints, methods=frozenset(methods), models=frozenset(models))


def _log(env: Mapping[str, str]) -> tuple[str, str]:
    level = (_get(env, "LOG_LEVEL") or "info").lower()
    level = "warning" if level == "warn" else level  # the upstream Go service's spelling
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
    fmt = (_get(env, "LOG_FORMAT") or "json").lower()
    if fmt not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT={fmt!r} is not json or text")
    return level, fmt


def load_proxy_settings(env: Mapping[str, str] | None = None) -> ProxySettings:
    env = os.environ if env is None else env
    host, port = _listen(env)
    management_token = _require(env, "MANAGEMENT_TOKEN", "set the bearer token of the management API")
    database_url = _database_url(env)
    encryption_key = _require(
        env,
        "ENCRYPTION_KEY",
        "set a secret of at least 32 characters (upstream API keys are encrypted with it)",
    )
    if len(encryption_key) < 32:
        raise ConfigError(
            f"ENCRYPTION_KEY is {len(encryption_key)} characters long: it needs at least 32 "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    upstream = (_get(env, "OPENAI_API_URL") or "https://api.openai.com").rstrip("/").removesuffix("/v1")
    if not upstream.startswith(("http://", "https://")):
        raise ConfigError(f"OPENAI_API_URL={upstream!r} must be an http:// or https:// URL")
    rpm = _integer(env, "RATE_LIMIT_RPM", 0, 0)
    level, fmt = _log(env)
    return ProxySettings(
        listen_host=host,
        listen_port=port,
        management_token=management_token,
        database_url=database_url,
        database_pool_size=_integer(env, "DATABASE_POOL_SIZE", 10, 1),
        database_connect_timeout=_number(env, "DATABASE_CONNECT_TIMEOUT", 30.0, 0.0),
        encryption_key=encryption_key,
        upstream_url=upstream,
        request_timeout=_number(env, "REQUEST_TIMEOUT", 30.0, 0.1),
        connect_timeout=_number(env, "UPSTREAM_CONNECT_TIMEOUT", 5.0, 0.1),
        cache_enabled=_boolean(env, "HTTP_CACHE_ENABLED", True),
        cache_redis=_redis(env, "REDIS_CACHE_URL", "REDIS_EVENT_URL"),
        cache_key_prefix=_get(env, "REDIS_CACHE_KEY_PREFIX") or "llmproxy:cache:",
        cache_max_body_bytes=_integer(env, "HTTP_CACHE_MAX_OBJECT_BYTES", 1_048_576, 0),
        event_redis=_redis(env, "REDIS_EVENT_URL", "REDIS_CACHE_URL"),
        stream_key=_get(env, "REDIS_STREAM_KEY") or "llm-proxy-events",
        stream_max_len=_integer(env, "REDIS_STREAM_MAX_LEN", 100_000, 1000),
        event_buffer_size=_integer(env, "EVENT_BUFFER_SIZE", 100_000, 1),
        event_batch_size=_integer(env, "EVENT_BATCH_SIZE", 500, 1),
        event_replay_window=_number(env, "EVENT_REPLAY_WINDOW", 60.0, 0.0),
        event_monitor_interval=_number(env, "EVENT_MONITOR_INTERVAL", 1.0, 0.05),
        event_flush_timeout=_number(env, "EVENT_FLUSH_TIMEOUT", 10.0, 0.0),
        token_cache_ttl=_number(env, "TOKEN_CACHE_TTL", 5.0, 0.0),
        rate_limit_rpm=rpm or None,
        drain_delay=_number(env, "DRAIN_DELAY", 1.0, 0.0),
        drain_timeout=_number(env, "DRAIN_TIMEOUT", 25.0, 0.0),
        allow=load_allow_list(env),
        log_level=level,
        log_format=fmt,
    )


def load_dispatcher_settings(env: Mapping[str, str] | None = None) -> DispatcherSettings:
    env = os.environ if env is None else env
    level, fmt = _log(env)
    jsonl = _get(env, "DISPATCHER_JSONL_PATH")
    if jsonl is not None and not Path(jsonl).parent.is_dir():
        raise ConfigError(f"DISPATCHER_JSONL_PATH={jsonl!r}: its directory does not exist")
    return DispatcherSettings(
        database_url=_database_url(env),
        database_connect_timeout=_number(env, "DATABASE_CONNECT_TIMEOUT", 30.0, 0.0),
        event_redis=_redis(env, "REDIS_EVENT_URL", "REDIS_CACHE_URL"),
        stream_key=_get(env, "REDIS_STREAM_KEY") or "llm-proxy-events",
        consumer_group=_get(env, "REDIS_CONSUMER_GROUP") or "llm-proxy-dispatchers",
        consumer_name=_get(env, "DISPATCHER_CONSUMER_NAME") or os.uname().nodename,
        batch_size=_integer(env, "DISPATCHER_BATCH_SIZE", 500, 1),
        block_ms=_integer(env, "DISPATCHER_BLOCK_MS", 1000, 1),
        claim_idle_ms=_integer(env, "DISPATCHER_CLAIM_IDLE_MS", 30_000, 1),
        claim_interval=_number(env, "DISPATCHER_CLAIM_INTERVAL", 5.0, 0.05),
        jsonl_path=jsonl,
        log_level=level,
        log_format=fmt,
    )
