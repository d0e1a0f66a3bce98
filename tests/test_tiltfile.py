"""The Tiltfile, evaluated without Tilt: starlark-pyo3 runs it with Tilt's builtins stubbed to record
their calls, and the tests check the resources, their dependencies and the live-update rules against
compose/compose.yaml and the Dockerfiles they build."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import starlark as sl
import yaml

ROOT = Path(__file__).resolve().parents[1]
TILTFILE = ROOT / "Tiltfile"
COMPOSE = yaml.safe_load((ROOT / "compose" / "compose.yaml").read_text())

# Tilt's modules (`config`, `os`) as starlark structs over recorded Python callables.
PRELUDE = """
config = struct(define_string_list = _define_string_list, parse = _parse)
os = struct(getenv = _getenv)
"""


@dataclass
class Tilt:
    """What the Tiltfile asked Tilt to do."""

    compose: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    dc: dict[str, dict[str, Any]] = field(default_factory=dict)
    local: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return {**self.dc, **self.local}


def evaluate(args: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Tilt:
    """Run the Tiltfile as `tilt up -- ARGS` would, with `env` as the environment."""
    tilt = Tilt()
    module = sl.Module()

    def add(name: str, func: Callable[..., Any]) -> None:
        module.add_callable(name, func)

    def docker_build(ref: str, context: str = ".", **kwargs: Any) -> None:
        assert ref not in tilt.builds, f"{ref} built twice"
        tilt.builds[ref] = {"context": context, **kwargs}

    def dc_resource(name: str, **kwargs: Any) -> None:
        assert name not in tilt.dc, f"dc_resource {name} declared twice"
        tilt.dc[name] = kwargs

    def local_resource(name: str, cmd: str = "", **kwargs: Any) -> None:
        assert name not in tilt.local, f"local_resource {name} declared twice"
        tilt.local[name] = {"cmd": cmd, **kwargs}

    add("_define_string_list", lambda name, **kw: tilt.flags.append(name))
    add("_parse", lambda: dict(args or {}))
    add("_getenv", lambda name, default=None: (env or {}).get(name, default))
    add("docker_compose", lambda *a, **kw: tilt.compose.append((a, kw)))
    add("docker_build", docker_build)
    add("dc_resource", dc_resource)
    add("local_resource", local_resource)
    add("sync", lambda src, dest: {"step": "sync", "src": src, "dest": dest})
    add("restart_container", lambda: {"step": "restart_container"})
    add("fall_back_on", lambda files: {"step": "fall_back_on", "files": files})
    add("link", lambda url, name="": {"url": url, "name": name})
    module["TRIGGER_MODE_MANUAL"] = "TRIGGER_MODE_MANUAL"
    module["TRIGGER_MODE_AUTO"] = "TRIGGER_MODE_AUTO"

    dialect = sl.Dialect.standard()  # Tilt's starlark-go: top-level statements, no f-strings
    dialect.enable_top_level_stmt = True
    dialect.enable_f_strings = False
    source = PRELUDE + TILTFILE.read_text()
    ast = sl.parse("Tiltfile", source, dialect)
    sl.eval(module, ast, sl.Globals.extended_by([sl.LibraryExtension.StructType]))
    return tilt


@pytest.fixture(scope="module")
def core() -> Tilt:
    return evaluate()


def services_in(profiles: list[str]) -> set[str]:
    return {n for n, s in COMPOSE["services"].items() if set(s.get("profiles", [])) & set(profiles)}


def test_tiltfile_runs_the_compose_stack_with_its_profiles(core: Tilt) -> None:
    ((args, kwargs),) = core.compose
    assert (ROOT / args[0]).resolve() == ROOT / "compose" / "compose.yaml"
    assert (ROOT / kwargs["env_file"]).is_file()
    assert kwargs["profiles"] == ["core"] and core.flags == ["profiles"]
    assert evaluate({"profiles": ["localstack"]}).compose[0][1]["profiles"] == ["core", "localstack"]


def test_every_core_service_is_a_labelled_resource(core: Tilt) -> None:
    assert set(core.dc) == services_in(["core"])
    assert all(r.get("labels") for r in core.resources.values()), "every resource is grouped by a label"


def test_resource_dependencies_mirror_compose(core: Tilt) -> None:
    for name, resource in core.dc.items():
        compose_deps = set(COMPOSE["services"][name].get("depends_on", {}))
        assert set(resource.get("resource_deps", [])) == compose_deps, name
    for name, resource in core.local.items():
        unknown = set(resource.get("resource_deps", [])) - set(core.resources)
        assert not unknown, f"{name} depends on unknown resources {unknown}"


def test_dependency_graph_has_no_cycle(core: Tilt) -> None:
    graph = {name: set(r.get("resource_deps", [])) for name, r in core.resources.items()}
    done: set[str] = set()
    while graph:
        ready = [n for n, deps in graph.items() if deps <= done]
        assert ready, f"a cycle among {sorted(graph)}"
        for name in ready:
            done.add(name)
            del graph[name]


def test_images_built_are_the_ones_compose_runs(core: Tilt) -> None:
    # "${LLMPROXY_IMAGE:-llmproxy:local}" -> "llmproxy:local": the default compose runs
    images = {re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", s["image"]) for s in COMPOSE["services"].values()}
    assert "llmproxy:local" in images and "devenv-cloud:local" in images
    for ref, build in core.builds.items():
        assert ref in images, f"{ref} is built but no compose service runs it"
        assert (ROOT / build["dockerfile"]).is_file()  # Tilt reads `dockerfile` relative to the Tiltfile
        assert (ROOT / build["context"]).is_dir()
    assert set(core.builds) == {"llmproxy:local", "devenv-cloud:local"}


def test_the_images_tilt_builds_are_the_ones_ci_builds() -> None:
    """CI builds the project's images with `python -m devenv.services.images build` (nox -s docker): Tilt
    builds each from the same context and Dockerfile, with the same PYTHON_IMAGE when air-gapped."""
    from devenv.services import images

    for air_gapped, env in ((False, {}), (True, images.variables(air_gapped=True))):
        tilt = evaluate(env=env)
        built = {
            ref: ((ROOT / b["context"]).resolve(), (ROOT / b["dockerfile"]).resolve(), b["build_args"])
            for ref, b in tilt.builds.items()
        }
        assert built == {
            tag: ((ROOT / context).resolve(), (ROOT / dockerfile).resolve(), args)
            for tag, context, dockerfile, args in images.project_builds(air_gapped)
        }


def copy_destination(dockerfile: Path, source: str) -> str:
    """Where the final stage of `dockerfile` copies `source` (relative to its build context)."""
    for line in reversed(dockerfile.read_text().splitlines()):
        parts = line.split()
        if parts[:1] == ["COPY"] and "--from=build" not in line:
            args = [p for p in parts[1:] if not p.startswith("--")]
            if source in args[:-1]:
                return args[-1].rstrip("/")
    raise AssertionError(f"{dockerfile.name} copies no {source}")


def test_llmproxy_live_update_syncs_where_the_image_keeps_the_code_and_restarts(core: Tilt) -> None:
    build = core.builds["llmproxy:local"]
    assert build["context"] == "./llmproxy"
    steps = build["live_update"]
    assert steps[0]["step"] == "fall_back_on" and "./llmproxy/requirements.txt" in steps[0]["files"]
    assert steps[-1] == {"step": "restart_container"}
    (sync,) = [s for s in steps if s["step"] == "sync"]
    assert sync["src"] == "./llmproxy"
    assert sync["dest"] == copy_destination(ROOT / "llmproxy" / "Dockerfile", ".")


def test_cloud_live_update_matches_its_dockerfile(core: Tilt) -> None:
    build = core.builds["devenv-cloud:local"]
    dockerfile = ROOT / build["dockerfile"]
    for step in build["live_update"]:
        if step["step"] == "sync":
            source = step["src"].removeprefix("./")
            copied = source + "/" if (ROOT / source).is_dir() else source
            dest = copy_destination(dockerfile, copied)
            expected = dest if copied.endswith("/") else dest + "/" + Path(source).name
            assert step["dest"] == expected, step
    for path in build["only"]:
        assert (ROOT / path).exists(), f"`only` names {path}, which does not exist"


def test_buttons_deploy_to_the_local_cloud_and_run_a_smoke_load_test(core: Tilt) -> None:
    deploy, smoke = core.local["deploy-local"], core.local["loadtest-smoke"]
    assert re.search(r"\bdevenv deploy --target local\b", deploy["cmd"])
    assert deploy["resource_deps"] == ["cloud"]
    assert re.search(r"\bdevenv loadtest --target local --profile smoke\b", smoke["cmd"])
    assert "--url http://localhost:8080" in smoke["cmd"]
    assert smoke["env"]["MANAGEMENT_TOKEN"] == COMPOSE["x-llmproxy-env"]["MANAGEMENT_TOKEN"].split(":-")[
        1
    ].rstrip("}")
    for button in (deploy, smoke):
        assert button["trigger_mode"] == "TRIGGER_MODE_MANUAL" and button["auto_init"] is False


def test_ports_follow_the_devenv_settings_variables() -> None:
    tilt = evaluate(env={"DEVENV_ALB_PORT": "18080", "DEVENV_EMULATOR_PORT": "14566"})
    assert "--url http://localhost:18080" in tilt.local["loadtest-smoke"]["cmd"]
    assert tilt.local["deploy-local"]["env"] == {"DEVENV_EMULATOR_PORT": "14566"}
    assert tilt.dc["cloud"]["links"][0]["url"] == "http://localhost:14566/moto-api/"


def test_loadtest_profile_adds_locust_and_its_image() -> None:
    tilt = evaluate({"profiles": ["loadtest"]})
    assert set(tilt.dc) == services_in(["loadtest"])
    assert tilt.dc["locust-master"]["resource_deps"] == ["caddy"]
    assert tilt.dc["locust-worker"]["resource_deps"] == ["locust-master"]
    assert tilt.dc["locust-master"]["links"][0]["url"] == "http://localhost:8089"
    assert "devenv-loadtest:local" in tilt.builds


def test_the_stubs_would_notice_an_unknown_builtin(tmp_path: Path) -> None:
    module = sl.Module()
    ast = sl.parse("Tiltfile", 'k8s_yaml("x.yaml")\n', sl.Dialect.standard())
    with pytest.raises(sl.StarlarkError, match="k8s_yaml"):
        sl.eval(module, ast, sl.Globals.standard())
