"""An action the local cloud lacks answers in its service's error format, and an SDK fails at once."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"


def sdk(endpoint: str, service: str, mode: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": mode}),
    )


@pytest.mark.parametrize("mode", ["legacy", "standard"])  # boto3's default, and the AWS CLI v2's
@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("ecs", lambda c: c.list_service_deployments(cluster="c", service="s"), "UnknownOperationException"),
        ("rds", lambda c: c.describe_db_cluster_automated_backups(), "InvalidAction"),
    ],
)
@pytest.mark.slow
def test_boto3_raises_at_once_with_the_services_error(
    scaled_emulator: str, service: str, call: Any, code: str, mode: str
) -> None:
    with pytest.raises(ClientError) as caught:
        call(sdk(scaled_emulator, service, mode))
    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert "is not available in the local cloud" in response["Error"]["Message"]
    assert caught.value.operation_name in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_the_answer_is_the_protocols_shape_not_html(scaled_emulator: str) -> None:
    url = scaled_emulator.replace("localhost", "127.0.0.1")
    json_call = urllib.request.Request(
        url,
        data=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListServiceDeployments",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/ecs/aws4_request",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(json_call)
    assert caught.value.code == 501
    body = json.loads(caught.value.read())
    message = body.get("message") or body["Message"]  # JSON protocols use either; SDKs read both
    assert body["__type"] == "UnknownOperationException" and "ListServiceDeployments" in message
    query_call = urllib.request.Request(
        url,
        data=b"Action=DescribeDBClusterAutomatedBackups&Version=2014-10-31",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/rds/aws4_request",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(query_call)
    assert caught.value.code == 501
    xml = caught.value.read().decode()
    assert xml.lstrip().startswith("<") and "<ErrorResponse" in xml and "<Code>InvalidAction</Code>" in xml
