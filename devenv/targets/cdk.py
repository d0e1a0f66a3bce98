"""The CDK side of a deploy: one cached synth of the app, and the pinned CDK CLI run against a target.

`run` is the one way devenv starts the CDK CLI (deploy, bootstrap, diff, destroy; up and the commands
alike): the pinned CLI, installed by `npm ci` when missing or when the lock changed, its output into the
state dir's `logs/cdk.log` (shown by `--verbose`, or as its last lines on failure), never on the terminal.

The cloud assembly lives under `<state_dir>/cdk/<hash>/`, the hash covering everything that changes the
synth: the stack's sources, the props file, the extra context, and the CDK library and CLI versions.
An unchanged app is therefore never synthesized twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from devenv.errors import MissingDependencyError, UsageError
from devenv.runtime import children
from devenv.runtime.logfiles import marker
from devenv.stack_names import STACK_NAME
from devenv.targets.local import DeployFailedError

SOURCE_SUFFIXES = (".py",)
SOURCE_FILES = (
    "cdk.json",
)  # the feature flags; the CLI's version is hashed from node_modules, not package.json
IGNORED_PARTS = {"node_modules", "cdk.out", "__pycache__", "tools", "props"}
ASSEMBLY_MARKER = "manifest.json"
LOG_NAME = "cdk"  # the CLI's output: <state dir>/logs/cdk.log


@dataclass(frozen=True)
class Assembly:
    """A synthesized cloud assembly and the template of the stack in it."""

    directory: Path
    digest: str
    cached: bool

    @property
    def template_path(self) -> Path:
        return self.template_path_of(STACK_NAME)

    def template_path_of(self, stack: str) -> Path:
        return self.directory / f"{stack}.template.json"

    def template(self, stack: str = STACK_NAME) -> dict[str, Any]:
        return dict(json.loads(self.template_path_of(stack).read_text()))

    def template_digest(self, stack: str = STACK_NAME) -> str:
        """What one stack of the app is made of (its template names its assets by hash): a deployed stack
        with this digest is unchanged, whatever happened to the app's other stacks."""
        return hashlib.sha256(self.template_path_of(stack).read_bytes()).hexdigest()[:16]


def props_file(stack_dir: Path, target: str) -> Path:
    """The props of a deploy target (`local`, `aws`): `props/<target>.json` in the CDK app."""
    return stack_dir / "props" / f"{target}.json"


def import_app(stack_dir: Path, module: str) -> ModuleType:
    """A module of the CDK app in `stack_dir` (e.g. `app`), imported in this process as the app imports
    itself (`<folder name>.<module>`, from the folder above). The app is the project's code, found through
    the `stack_dir` setting, never a dependency of devenv's wheel."""
    parent = str(stack_dir.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    loaded = importlib.import_module(f"{stack_dir.name}.{module}")
    origin = Path(loaded.__file__ or "").resolve().parent
    if origin != stack_dir.resolve():
        raise UsageError(
            f"the CDK app's package {stack_dir.name!r} was already loaded from {origin}, not {stack_dir}",
            "run devenv from the project of the stack_dir setting, or set DEVENV_STACK_DIR to that app",
        )
    return loaded


def cli_version(stack_dir: Path) -> str:
    package = stack_dir / "node_modules" / "aws-cdk" / "package.json"
    return str(json.loads(package.read_text()).get("version", "unknown")) if package.exists() else "missing"


def library_version() -> str:
    try:
        return metadata.version("aws-cdk-lib")
    except metadata.PackageNotFoundError:
        return "missing"


def source_files(stack_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in stack_dir.rglob("*")
        if path.is_file()
        and (path.suffix in SOURCE_SUFFIXES or path.name in SOURCE_FILES)
        and not IGNORED_PARTS.intersection(path.relative_to(stack_dir).parts)
    )


def assembly_digest(stack_dir: Path, props_file: Path | None, context: Mapping[str, Any]) -> str:
    """Hash of every input of the synth."""
    digest = hashlib.sha256()
    for path in source_files(stack_dir):
        digest.update(str(path.relative_to(stack_dir)).encode())
        digest.update(path.read_bytes())
    if props_file is not None:
        digest.update(b"props:" + props_file.read_bytes())
    digest.update(json.dumps(dict(context), sort_keys=True, default=str).encode())
    digest.update(
        f"lib={library_version()} cli={cli_version(stack_dir)} python={sys.version_info[:2]}".encode()
    )
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        digest.update(f"{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()[:16]


def synthesize(
    state_dir: Path,
    stack_dir: Path,
    props_file: Path | None,
    context: Mapping[str, Any] | None = None,
) -> Assembly:
    """The cloud assembly for these inputs: from the cache, or synthesized once (in a child process)."""
    if props_file is not None and not props_file.is_file():
        raise UsageError(
            f"props file {props_file} does not exist", "pass --props with a JSON file (see stack/props/)"
        )
    context = dict(context or {})
    digest = assembly_digest(stack_dir, props_file, context)
    directory = state_dir / "cdk" / digest
    if is_complete(directory):
        return Assembly(directory, digest, cached=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(directory.with_name(digest + ".lock")):
        if is_complete(directory):  # another devenv synthesized the same inputs while this one waited
            return Assembly(directory, digest, cached=True)
        synthesize_into(directory, stack_dir, props_file, context)
    return Assembly(directory, digest, cached=False)


def is_complete(directory: Path) -> bool:
    return (directory / ASSEMBLY_MARKER).is_file() and (directory / f"{STACK_NAME}.template.json").is_file()


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Held while one process synthesizes into a cache that others may share (`cdk_cache_dir`): a second
    `devenv` with the same inputs waits for the first one's assembly instead of writing beside it."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def synthesize_into(
    directory: Path, stack_dir: Path, props_file: Path | None, context: Mapping[str, Any]
) -> None:
    """Synthesize in a child process into a staging folder, renamed to `directory` once complete."""
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        f"from {stack_dir.name}.app import synthesize\n"
        f"from {stack_dir.name}.config import PropsError\n"
        "props = Path(sys.argv[1]) if sys.argv[1] else None\n"
        "try:\n"
        "    synthesize(props, Path(sys.argv[2]), json.loads(sys.argv[3]))\n"
        "except PropsError as exc:\n"
        "    print(f'invalid props: {exc}', file=sys.stderr)\n"
        "    sys.exit(2)\n"
    )
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(props_file or ""), str(staging), json.dumps(context)],
        cwd=stack_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        error = UsageError if result.returncode == 2 else DeployFailedError
        raise error(
            f"the CDK app failed to synthesize:\n{result.stderr.strip()[-3000:]}",
            "fix the stack or its props",
        )
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def ensure_cli(stack_dir: Path, log_path: Path | None = None) -> Path:
    """The CDK CLI pinned in the app's package.json, installed or refreshed first when needed.

    `npm ci` runs when the CLI is missing or the lock file is newer than npm's record of the last install
    (node_modules/.package-lock.json), the rule scripts/setup.sh applies too; so every command (deploy,
    diff, up) sees the same CLI. npm's output goes to `log_path` when given."""
    if shutil.which("node") is None:
        raise MissingDependencyError(
            "Node.js (`node`, and `npm` to install the CDK CLI) is not on PATH; the CDK CLI needs it",
            "install Node.js 22+ (20 works) with npm, then rerun; devenv installs the pinned CDK CLI itself",
        )
    binary = stack_dir / "node_modules" / ".bin" / "cdk"
    installed = stack_dir / "node_modules" / ".package-lock.json"
    lock = stack_dir / "package-lock.json"
    if binary.is_file() and installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise MissingDependencyError(
            "the CDK CLI needs Node.js and npm, and `npm` is not on PATH",
            "install Node.js 22+ (with npm), then rerun; devenv installs the pinned CDK CLI itself",
        )
    result = run_logged([npm, "ci", "--no-audit", "--no-fund"], stack_dir, dict(os.environ), log_path)
    if result.exit_code != 0 or not binary.is_file():
        raise MissingDependencyError(
            result.failure(f"`npm ci` in {stack_dir} failed"),
            f"check that the npm registry is reachable, then rerun (or run `npm ci` in {stack_dir} yourself)",
        )
    return binary


@dataclass(frozen=True)
class CliRun:
    """What a run of a command printed, and where the whole of it is kept."""

    command: str
    exit_code: int
    lines: tuple[str, ...]
    log_path: Path | None

    def last_lines(self, count: int = 25) -> str:
        return "\n".join(line for line in self.lines[-count:])

    def failure(self, what: str) -> str:
        """`what` (exit N) and the run's last lines, naming the log that holds them all."""
        where = f"; the whole output is in {self.log_path}" if self.log_path else ""
        return f"{what} (exit {self.exit_code}){where}. Its last lines:\n{self.last_lines()}"


def run_logged(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path | None,
    on_line: Callable[[str], None] | None = None,
) -> CliRun:
    """Run a command, its output (stdout and stderr) appended to `log_path` under a header line, each line
    also handed to `on_line` (a progress parser); never printed."""
    command = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
    log = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed below, after the child ends
        log.write(marker(command))
        log.flush()
    lines: list[str] = []
    try:
        process = children.spawn(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                if log is not None:
                    log.write(raw if raw.endswith("\n") else raw + "\n")
                    log.flush()
                if on_line is not None:
                    on_line(line)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) or a failing parser: no CLI left running
            process.kill()
            process.wait()
            raise
        code = process.wait()
    finally:
        if log is not None:
            log.close()
    return CliRun(command, code, tuple(lines), log_path)


def run(
    arguments: list[str],
    env: Mapping[str, str],
    stack_dir: Path,
    log_path: Path | None,
    on_line: Callable[[str], None] | None = None,
) -> CliRun:
    """The one way devenv runs the CDK CLI: the pinned CLI (installed or refreshed first) in `env` (the
    whole environment of the target: `local_env` over os.environ, or the user's AWS one) made quiet by
    `cli_env`, its output into `log_path` (the state dir's logs/cdk.log)."""
    binary = ensure_cli(stack_dir, log_path)
    return run_logged([str(binary), *arguments], stack_dir, cli_env(env), log_path, on_line)


def cli_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for the CDK CLI: no version check, telemetry or Node end-of-life banner (offline-safe), the
    venv's python first on PATH (the app's `python app.py`)."""
    return {
        **env,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }


@dataclass(frozen=True)
class ResourceEvent:
    """One resource line of the CLI's `--progress events` output."""

    stack: str
    status: str
    resource_type: str
    resource: str


# `LlmProxyStack |   3 | 9:53:55 AM | CREATE_COMPLETE | AWS::EC2::Subnet | Network/Vpc/... (Id)`
# (`CDKToolkit |  3/15 | ...` while bootstrapping)
EVENT_LINE = re.compile(
    r"^\s*(?P<stack>[A-Za-z][\w-]*)\s*\|\s*\d+(?:/\d+)?\s*\|\s*[^|]+\|\s*(?P<status>[A-Z_]+)\s*\|"
    r"\s*(?P<type>[\w:]+)\s*\|\s*(?P<resource>.+?)\s*$"
)


def resource_event(line: str) -> ResourceEvent | None:
    """The resource event a line of CDK CLI output reports, if it is one."""
    match = EVENT_LINE.match(line)
    if match is None:
        return None
    # the construct path, without " (LogicalId)" or the stack's " User Initiated"
    resource = re.sub(r" \([A-Za-z0-9]+\)$| User Initiated$", "", match["resource"])
    return ResourceEvent(match["stack"], match["status"], match["type"], resource)


class ResourceCounter:
    """Turns the CLI's resource events into "resources N/M" and the resource being worked on."""

    def __init__(self, total: int, report: Callable[[str], None]) -> None:
        self.total = total
        self._report = report
        self._complete: set[str] = set()

    def __call__(self, line: str) -> None:
        event = resource_event(line)
        if event is None or event.resource_type == "AWS::CloudFormation::Stack":
            return
        if event.status.endswith("_COMPLETE"):
            self._complete.add(event.resource)
        count = f"{len(self._complete)}/{self.total}" if self.total else str(len(self._complete))
        self._report(f"resources {count} · {event.resource}")

    @property
    def completed(self) -> int:
        return len(self._complete)


def local_env(endpoint: str, region: str) -> dict[str, str]:
    """The environment that points the CDK CLI at the emulator (what cdklocal would set), with the test
    credentials."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def deploy_arguments(
    assembly: Assembly, method: str = "direct", extra: list[str] | None = None, stack: str = STACK_NAME
) -> list[str]:
    """`cdk deploy` of one stack of the assembly; another stack than the proxy's is deployed on its own
    (`--exclusively`): the proxy stack it reads outputs from is deployed already, and stays as it is."""
    return [
        "deploy",
        stack,
        *(["--exclusively"] if stack != STACK_NAME else []),
        "--app",
        str(assembly.directory),
        "--method",
        method,
        "--require-approval",
        "never",
        "--progress",
        "events",
        "--no-notices",
        "--ci",
        *(extra or []),
    ]


def bootstrap_arguments(assembly: Assembly, account: str, region: str) -> list[str]:
    """`--app` the cached assembly, so the CLI does not run stack/cdk.json's app again."""
    return [
        "bootstrap",
        f"aws://{account}/{region}",
        "--app",
        str(assembly.directory),
        "--no-notices",
        "--ci",
    ]


def destroy_arguments(assembly: Assembly, stack: str = STACK_NAME) -> list[str]:
    return ["destroy", stack, "--app", str(assembly.directory), "--force", "--no-notices", "--ci"]


def diff_arguments(assembly: Assembly) -> list[str]:
    return ["diff", STACK_NAME, "--app", str(assembly.directory), "--no-notices"]
