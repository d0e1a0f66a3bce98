"""The CDK side of a deploy: one cached synth of the app, and the pinned CDK CLI run against a target.

The cloud assembly lives under `<state_dir>/cdk/<hash>/`, the hash covering everything that changes the
synth: the stack's sources, the props file, the extra context, and the CDK library and CLI versions.
An unchanged app is therefore never synthesized twice.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from devenv.errors import MissingDependencyError, UsageError
from devenv.stack_names import STACK_NAME
from devenv.targets.local import DeployFailedError

SOURCE_SUFFIXES = (".py",)
SOURCE_FILES = (
    "cdk.json",
)  # the feature flags; the CLI's version is hashed from node_modules, not package.json
IGNORED_PARTS = {"node_modules", "cdk.out", "__pycache__", "tools", "props"}
ASSEMBLY_MARKER = "manifest.json"


@dataclass(frozen=True)
class Assembly:
    """A synthesized cloud assembly and the template of the stack in it."""

    directory: Path
    digest: str
    cached: bool

    @property
    def template_path(self) -> Path:
        return self.directory / f"{STACK_NAME}.template.json"

    def template(self) -> dict[str, Any]:
        return dict(json.loads(self.template_path.read_text()))


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


def cdk_cli(stack_dir: Path) -> Path:
    """The CDK CLI pinned in stack/package.json."""
    binary = stack_dir / "node_modules" / ".bin" / "cdk"
    if not binary.exists():
        raise MissingDependencyError(
            f"the pinned CDK CLI is not installed ({binary} is missing)", f"run `npm ci` in {stack_dir}"
        )
    if shutil.which("node") is None:
        raise MissingDependencyError(
            "Node.js is not on PATH; the CDK CLI needs it", "install Node.js 20 or newer"
        )
    return binary


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
    on_event: Callable[[str], None] | None = None,
) -> Assembly:
    """The cloud assembly for these inputs: from the cache, or synthesized once (in a child process)."""
    say = on_event or (lambda message: None)
    if props_file is not None and not props_file.is_file():
        raise UsageError(
            f"props file {props_file} does not exist", "pass --props with a JSON file (see stack/props/)"
        )
    context = dict(context or {})
    digest = assembly_digest(stack_dir, props_file, context)
    directory = state_dir / "cdk" / digest
    if (directory / ASSEMBLY_MARKER).is_file() and (directory / f"{STACK_NAME}.template.json").is_file():
        say(f"cloud assembly unchanged ({digest}), not synthesizing")
        return Assembly(directory, digest, cached=True)
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    say(f"synthesizing {STACK_NAME} ({digest})")
    started = time.monotonic()
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
    say(f"synthesized in {time.monotonic() - started:.1f} s")
    return Assembly(directory, digest, cached=False)


def run_cli(
    arguments: list[str],
    env: Mapping[str, str],
    stack_dir: Path,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Run the pinned CDK CLI; each output line goes to `on_line`; returns (exit code, output)."""
    command = [str(cdk_cli(stack_dir)), *arguments]
    process = subprocess.Popen(
        command,
        cwd=stack_dir,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if on_line is not None:
            on_line(line.rstrip())
    return process.wait(), "".join(lines)


def local_env(endpoint: str, region: str) -> dict[str, str]:
    """What points the CDK CLI at the emulator (what cdklocal would set), with the test credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }


def deploy_arguments(assembly: Assembly, method: str = "direct", extra: list[str] | None = None) -> list[str]:
    return [
        "deploy",
        STACK_NAME,
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


def destroy_arguments(assembly: Assembly) -> list[str]:
    return ["destroy", STACK_NAME, "--app", str(assembly.directory), "--force", "--no-notices", "--ci"]


def diff_arguments(assembly: Assembly) -> list[str]:
    return ["diff", STACK_NAME, "--app", str(assembly.directory), "--no-notices"]
