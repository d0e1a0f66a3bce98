"""`devenv synth`, `devenv diff` and the config CLI (secret/config/setup) against a real moto server.

The commands run in-process through Typer's runner (the CDK library is already loaded by the template
tests, so a synth costs about a second); two error paths run the real `devenv` executable to show the
user sees a message and an exit code, never a traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from devenv.cli.app import app
from devenv.errors import DevenvError, MissingDependencyError
from devenv.targets.cdk import ensure_cli
from stack.app import STACK_DIR
from stack.names import PARAMETERS, SECRETS
from tests.ports import free_port
from tests.stack.conftest import Synth

REGION = "eu-central-1"


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, input: str | None = None) -> tuple[int, str]:
        """Exit code (DevenvError mapped as `devenv.cli.app.main` does) and stdout."""
        result = CliRunner().invoke(app, list(args), env=self.env, input=input)
        if isinstance(result.exception, DevenvError):
            return result.exception.exit_code, result.stdout + f"\nerror: {result.exception.message}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield port
    server.stop()


@pytest.fixture
def cli(moto_port: int, tmp_path: Path) -> Cli:
    """The CLI against an empty cloud: the server is shared by the module, its state is not."""
    requests.post(f"http://127.0.0.1:{moto_port}/moto-api/reset", timeout=10).raise_for_status()
    return Cli(
        {
            "DEVENV_EMULATOR_PORT": str(moto_port),
            "DEVENV_REGION": REGION,
            "DEVENV_STATE_DIR": str(tmp_path / "state"),
        }
    )


def moto_client(service: str, port: int) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_secret_set_get_never_echoes_the_value(cli: Cli, moto_port: int) -> None:
    code, out = cli("secret", "set", "management-token", "s3cret-token-value", "--target", "local")
    assert (
        code == 0 and "s3cret-token-value" not in out and "created secret llm-proxy/management-token" in out
    )
    stored = moto_client("secretsmanager", moto_port).get_secret_value(SecretId=SECRETS["management-token"])
    assert stored["SecretString"] == "s3cret-token-value"

    code, out = cli("secret", "set", "management-token", "second-value", "-o", "json")
    assert code == 0 and json.loads(out)["created"] is False and "second-value" not in out

    code, out = cli("secret", "get", "management-token")
    assert code == 0 and "second-value" not in out and "12 characters" in out
    code, out = cli("secret", "get", "management-token", "--reveal")
    assert code == 0 and out.strip() == "second-value"
    code, out = cli("secret", "get", "management-token", "-o", "json")
    assert json.loads(out)["value"] == "********"


def test_secret_set_prompts_when_value_omitted(cli: Cli, moto_port: int) -> None:
    code, out = cli("secret", "set", "openai-api-key", input="sk-typed\nsk-typed\n")
    assert code == 0 and "sk-typed" not in out
    stored = moto_client("secretsmanager", moto_port).get_secret_value(SecretId=SECRETS["openai-api-key"])
    assert stored["SecretString"] == "sk-typed"


def test_secret_errors(cli: Cli) -> None:
    code, out = cli("secret", "get", "no-such-secret")
    assert code == 2 and "unknown secret 'no-such-secret'" in out
    code, out = cli("secret", "get", "admin-password")
    assert code == 1 and "does not exist" in out


def test_config_set_get_list(cli: Cli, moto_port: int) -> None:
    code, out = cli("config", "set", "log-level", "debug")
    assert code == 0
    stored = moto_client("ssm", moto_port).get_parameter(Name=PARAMETERS["log-level"])
    assert stored["Parameter"]["Value"] == "debug"
    code, out = cli("config", "get", "/llm-proxy/log-level")
    assert code == 0 and out.strip() == "debug"
    code, out = cli("config", "set", "rate-limit-rpm", "120", "-o", "json")
    assert json.loads(out)["value"] == "120"
    code, out = cli("config", "list", "-o", "json")
    values = {row["key"]: row["value"] for row in json.loads(out)}
    assert values["log-level"] == "debug" and values["rate-limit-rpm"] == "120"
    assert set(values) == set(PARAMETERS)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("log-level", "loud", "must be one of"),
        ("rate-limit-rpm", "5.5", "whole number"),
        ("upstream-url", "api.openai.com", "http or https URL"),
        ("cache-enabled", "yes", "must be one of"),
        ("colour", "blue", "unknown config name"),
    ],
)
def test_config_rejects_bad_values(cli: Cli, moto_port: int, name: str, value: str, message: str) -> None:
    code, out = cli("config", "set", name, value)
    assert code == 2 and message in out


def test_setup_wizard_writes_the_answers(cli: Cli, moto_port: int) -> None:
    answers = "\n".join(["http://127.0.0.1:9999", "warning", "false", "60", "generate", "sk-wizard", ""])
    code, out = cli("setup", "-o", "json", input=answers)
    assert code == 0, out
    ssm = moto_client("ssm", moto_port)
    assert ssm.get_parameter(Name=PARAMETERS["upstream-url"])["Parameter"]["Value"] == "http://127.0.0.1:9999"
    assert ssm.get_parameter(Name=PARAMETERS["cache-enabled"])["Parameter"]["Value"] == "false"
    secrets = moto_client("secretsmanager", moto_port)
    token = secrets.get_secret_value(SecretId=SECRETS["management-token"])["SecretString"]
    assert len(token) >= 40 and token not in out
    assert secrets.get_secret_value(SecretId=SECRETS["openai-api-key"])["SecretString"] == "sk-wizard"
    # Typer's test runner echoes typed input into stdout; a terminal shows it on the tty instead.
    assert SECRETS["management-token"] in json.loads(out[out.index("{") :])["changed"]


def test_real_executable_errors_without_traceback(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    env = {"DEVENV_EMULATOR_PORT": str(port), "DEVENV_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    devenv = [sys.executable, "-m", "devenv"]
    unknown = subprocess.run(
        [*devenv, "secret", "get", "nope"], capture_output=True, text=True, env=env, timeout=60
    )
    assert (
        unknown.returncode == 2 and "unknown secret" in unknown.stderr and "Traceback" not in unknown.stderr
    )
    down = subprocess.run([*devenv, "config", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert down.returncode == 7 and "not answering" in down.stderr and "Traceback" not in down.stderr


@pytest.mark.slow
def test_synth_writes_the_cloud_assembly(cli: Cli, tmp_path: Path) -> None:
    outdir = tmp_path / "cdk.out"
    code, out = cli("synth", "--target", "local", "--outdir", str(outdir), "-o", "json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["stack"] == "LlmProxyStack" and Path(summary["template"]).is_file()
    assert summary["resource_types"]["AWS::ElastiCache::ReplicationGroup"] == 1
    assert {"AlbUrl", "ClusterName", "EcrRepositoryUri"} <= set(summary["outputs"])


def test_synth_bad_props_name_the_prop(cli: Cli, tmp_path: Path) -> None:
    props = tmp_path / "bad.json"
    props.write_text(json.dumps({"proxyMinTasks": 5, "proxyMaxTasks": 2}))
    code, out = cli("synth", "--props", str(props), "--outdir", str(tmp_path / "out"))
    assert code == 2 and "proxyMaxTasks" in out
    assert not (tmp_path / "out" / "LlmProxyStack.template.json").exists()
    code, out = cli("synth", "-c", "imageTg=v1", "--outdir", str(tmp_path / "out"))
    assert code == 2 and "imageTg" in out


@pytest.mark.slow
def test_diff_against_the_emulator(cli: Cli, tmp_path: Path) -> None:
    code, out = cli("diff", "--target", "local", "--outdir", str(tmp_path / "out"), "-o", "json")
    assert code == 0, out
    result = json.loads(out)
    assert result["method"] == "template" and result["differences"] is True
    assert "AWS::RDS::DBCluster" in result["diff"]


def test_diff_falls_back_to_a_template_diff(tmp_path: Path) -> None:
    offline = Cli({"DEVENV_EMULATOR_PORT": str(free_port()), "DEVENV_STATE_DIR": str(tmp_path / "state")})
    code, out = offline("diff", "--target", "local", "--outdir", str(tmp_path / "out"), "-o", "json")
    assert code == 0, out
    result = json.loads(out)
    assert result["method"] == "offline-template" and result["baseline"].startswith("an empty template")
    assert result["differences"] is True and "AWS::ElastiCache::ReplicationGroup" in result["diff"]


@pytest.mark.slow
def test_cdk_cli_is_installed_on_first_use_and_again_when_the_lock_changes(tmp_path: Path) -> None:
    """`npm ci` from the lock file installs the pinned CLI (no global install), again only after the lock
    changed, for every command alike; npm's output goes to the log."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(STACK_DIR / name, tmp_path / name)
    log = tmp_path / "cdk.log"
    binary = ensure_cli(stack_dir=tmp_path, log_path=log)
    assert binary == tmp_path / "node_modules" / ".bin" / "cdk"
    pinned = json.loads((STACK_DIR / "package.json").read_text())["devDependencies"]["aws-cdk"]
    installed = json.loads((tmp_path / "node_modules" / "aws-cdk" / "package.json").read_text())["version"]
    assert installed == pinned
    assert log.read_text().count(": npm ci ") == 1

    ensure_cli(stack_dir=tmp_path, log_path=log)  # nothing changed: no install
    assert log.read_text().count(": npm ci ") == 1
    (tmp_path / "package-lock.json").touch()  # a pull brought a new lock
    ensure_cli(stack_dir=tmp_path, log_path=log)
    assert log.read_text().count(": npm ci ") == 2


def test_cdk_cli_without_npm_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    with pytest.raises(MissingDependencyError, match="npm") as caught:
        ensure_cli(stack_dir=tmp_path)
    assert caught.value.hint and "Node.js" in caught.value.hint


def test_offline_diff_against_the_recorded_deploy_shows_no_change(tmp_path: Path, local_synth: Synth) -> None:
    recorded = tmp_path / "state" / "deployed" / "local" / "LlmProxyStack.template.json"
    recorded.parent.mkdir(parents=True)
    shutil.copy(local_synth.assembly / "LlmProxyStack.template.json", recorded)
    offline = Cli({"DEVENV_EMULATOR_PORT": str(free_port()), "DEVENV_STATE_DIR": str(tmp_path / "state")})
    code, out = offline("diff", "--target", "local", "--outdir", str(tmp_path / "out"), "-o", "json")
    assert code == 0, out
    result = json.loads(out)
    assert result["baseline"] == str(recorded) and result["differences"] is False
