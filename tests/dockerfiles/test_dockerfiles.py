"""dockerfiles/: the project's own images, checked without Docker: hadolint, and what a build would
prove (non-root, health check, multi-arch base, COPY sources present, every import installed).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "dockerfiles").glob("*.Dockerfile"))
# What each image runs (its entry files); everything they import, ours or not, must be in the image.
RUNS = {
    # the emulator; and compose's `redis-tls` job, `python -m devenv.services.tls` (its package loads first)
    "cloud.Dockerfile": [
        "devenv/emulator/__main__.py",
        "devenv/services/__init__.py",
        "devenv/services/tls.py",
    ],
    "loadtest.Dockerfile": ["loadtests/locustfile.py", "loadtests/shapes.py"],
}
FIRST_PARTY = ("devenv", "stack", "llmproxy")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append(Instruction(keyword.upper(), args.strip()))
    return result


def final_stage(path: Path) -> list[Instruction]:
    steps = instructions(path)
    last_from = max(i for i, step in enumerate(steps) if step.keyword == "FROM")
    return steps[last_from:]


def test_there_are_project_dockerfiles() -> None:
    assert {p.name for p in DOCKERFILES} == set(RUNS)


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--format", "json", "--failure-threshold", "info", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and json.loads(done.stdout or "[]") == [], done.stdout + done.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python\nRUN pip install moto\n")
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--format", "json", str(bad)], capture_output=True, text=True, check=False
    )
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert done.returncode != 0 and {"DL3006", "DL3013"} <= codes  # untagged base, unpinned pip install


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_is_non_root_with_a_health_check(dockerfile: Path) -> None:
    stage = final_stage(dockerfile)
    users = [s.args for s in stage if s.keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, (
        f"USER {users[-1]}: use a numeric non-root uid (runAsNonRoot checks)"
    )
    health = [s.args for s in stage if s.keyword == "HEALTHCHECK"]
    assert len(health) == 1 and "CMD" in health[0] and "NONE" not in health[0]
    assert any(s.keyword == "ENTRYPOINT" for s in stage)
    assert any(s.keyword == "EXPOSE" for s in stage)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_builds_for_every_architecture(dockerfile: Path) -> None:
    """Multi-arch: a multi-platform base, wheels resolved per platform, nothing arch-specific."""
    text = " ".join(f"{s.keyword} {s.args}" for s in instructions(dockerfile))  # comments may name platforms
    assert not re.search(r"amd64|x86_64|aarch64|arm64|--platform", text), "an architecture is hard-coded"
    args = {
        s.args.split("=")[0]: s.args.split("=", 1)[1]
        for s in instructions(dockerfile)
        if s.keyword == "ARG" and "=" in s.args
    }
    bases = [s.args.split()[0] for s in instructions(dockerfile) if s.keyword == "FROM"]
    for base in bases:
        image = args.get(base.strip("${}"), base)
        assert re.fullmatch(r"python:3\.11-slim-bookworm", image), (
            f"{image}: use the official multi-arch slim image"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_sources_exist(dockerfile: Path) -> None:
    """A build would fail on a missing COPY source; check them from the build context (the repo root)."""
    copies = [s.args for s in instructions(dockerfile) if s.keyword == "COPY" and "--from=" not in s.args]
    assert copies
    for args in copies:
        *sources, _target = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def installed_requirements(dockerfile: Path) -> list[str]:
    for step in instructions(dockerfile):
        match = re.search(r"uv pip install [^&]*?--constraint \S+ (?P<pkgs>[^&]+)", step.args)
        if step.keyword == "RUN" and match:
            return shlex.split(match["pkgs"])
    raise AssertionError("no `uv pip install --constraint ...` step")


def closure(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in (extras followed), by normalised name."""
    seen: set[str] = set()
    todo = [(Requirement(r), set(Requirement(r).extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        for dep in importlib.metadata.requires(req.name) or []:
            dep_req = Requirement(dep)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if dep_req.marker is None or any(dep_req.marker.evaluate(env) for env in environments):
                todo.append((dep_req, set(dep_req.extras)))
    return {s for s in seen if "[" not in s}


def imports(path: Path) -> set[str]:
    """Every absolute module name `path` imports (lazy imports too), with `from a import b` as a and a.b."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reached(entries: list[str]) -> tuple[set[Path], set[str]]:
    """The project files the entries load (following our own imports), and the other modules they import."""
    files: set[Path] = set()
    others: set[str] = set()
    todo = [ROOT / entry for entry in entries]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        for name in imports(path):
            top = name.split(".")[0]
            if top not in FIRST_PARTY:
                if top not in sys.stdlib_module_names:
                    others.add(top)
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # a module loads its parent packages first
                found = module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return files, others


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_project_file_the_image_runs_is_copied_in(dockerfile: Path) -> None:
    copied = []
    for step in instructions(dockerfile):
        if step.keyword == "COPY" and "--from=" not in step.args:
            copied += shlex.split(step.args)[:-1]
    files, _ = reached(RUNS[dockerfile.name])
    for path in sorted(files):
        relative = path.relative_to(ROOT).as_posix()
        assert any(relative == c or (c.endswith("/") and relative.startswith(c)) for c in copied), (
            f"{dockerfile.name} runs {relative} but never copies it"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_import_of_what_the_image_runs_is_installed(dockerfile: Path) -> None:
    provided = closure(installed_requirements(dockerfile))
    distributions = importlib.metadata.packages_distributions()
    _, modules = reached(RUNS[dockerfile.name])
    assert modules, "nothing third-party found: the import walk is broken"
    for module in sorted(modules):
        owners = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        assert owners, f"{module}: imported but not installed in the dev environment either"
        assert owners & provided, f"{dockerfile.name}: {module} (from {owners}) is not installed in the image"


def test_the_closure_check_would_catch_a_missing_package() -> None:
    assert "werkzeug" in closure(["moto[server]"])  # moto's server extra brings its WSGI server
    assert "werkzeug" not in closure(["pyyaml"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_its_dockerignore_sends_only_and_all_of_what_it_copies(dockerfile: Path) -> None:
    """`<name>.Dockerfile.dockerignore` (BuildKit): exclude all, then re-include each COPY source."""
    lines = [line.strip() for line in Path(f"{dockerfile}.dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for step in instructions(dockerfile):
        if step.keyword == "COPY" and "--from=" not in step.args:
            copied |= {source.rstrip("/") for source in shlex.split(step.args)[:-1]}
    assert included == copied


def test_the_cloud_image_runs_the_redis_certificate_job() -> None:
    """compose's `redis-tls` job runs devenv's CA code in the cloud image (RUNS checks its files and imports)."""
    compose = yaml.safe_load((ROOT / "compose" / "compose.yaml").read_text())
    job = compose["services"]["redis-tls"]
    assert job["build"]["dockerfile"] == "dockerfiles/cloud.Dockerfile"
    module = job["entrypoint"][job["entrypoint"].index("-m") + 1]
    assert module.replace(".", "/") + ".py" in RUNS["cloud.Dockerfile"]
