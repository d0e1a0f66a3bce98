"""The one CDK runner: a command's output goes to the log (never the terminal), a failure quotes the log's
last lines and names it, and the CLI's resource events become "resources N/M" for the progress display."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devenv.targets import cdk

# As the pinned CLI prints them (`--progress events`), from a real deploy and bootstrap.
DEPLOY_LINES = [
    "LlmProxyStack |   0 | 10:05:15 AM | CREATE_IN_PROGRESS      | AWS::CloudFormation::Stack"
    "                  | LlmProxyStack User Initiated",
    "LlmProxyStack |   1 | 10:05:15 AM | CREATE_COMPLETE         | AWS::EC2::RouteTable"
    "                        | Network/Vpc/publicSubnet1/RouteTable (NetworkVpcpublicSubnet1RouteTableDFE49ED6) ",
    "LlmProxyStack |   2 | 10:05:15 AM | CREATE_IN_PROGRESS      | AWS::EC2::Subnet"
    "                            | Network/Vpc/publicSubnet1/Subnet (NetworkVpcpublicSubnet1Subnet00617657) ",
    " ✅  LlmProxyStack",
    "CDKToolkit |  1/15 | 10:05:13 AM | CREATE_COMPLETE         | AWS::S3::BucketPolicy      | StagingBucketPolicy ",
]


def test_output_goes_to_the_log_and_a_failure_quotes_its_end(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "cdk.log"
    script = (
        "import sys\nfor i in range(1, 31): print('line', i)\nprint('oops', file=sys.stderr)\nsys.exit(3)"
    )

    run = cdk.run_logged([sys.executable, "-u", "-c", script], tmp_path, {}, log)

    assert run.exit_code == 3 and len(run.lines) == 31
    assert capfd.readouterr().out == ""  # nothing on the terminal
    text = log.read_text()
    assert text.startswith("--- devenv ") and "line 1\n" in text and text.endswith("oops\n")
    message = run.failure("the command failed")
    assert "(exit 3)" in message and str(log) in message
    assert message.endswith("line 30\noops") and "line 6\n" not in message  # its last 25 lines


def test_resource_events_become_resources_n_of_m() -> None:
    seen: list[str] = []
    counter = cdk.ResourceCounter(83, seen.append)
    for line in DEPLOY_LINES[:4]:
        counter(line)
    assert seen == [
        "resources 1/83 · Network/Vpc/publicSubnet1/RouteTable",
        "resources 1/83 · Network/Vpc/publicSubnet1/Subnet",
    ]
    assert counter.completed == 1
    assert cdk.resource_event(DEPLOY_LINES[4]) == cdk.ResourceEvent(
        "CDKToolkit", "CREATE_COMPLETE", "AWS::S3::BucketPolicy", "StagingBucketPolicy"
    )
