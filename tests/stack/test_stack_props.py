"""Stack props: the seed's defaults, the per-target files, and bad values failing with the prop's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stack.config import PropsError, load_props, parse_props, target_props_file


def test_defaults_are_the_seeds() -> None:
    props = parse_props({})
    assert props.nat_gateways == 1
    assert (props.aurora_min_capacity, props.aurora_max_capacity, props.aurora_readers) == (0.5, 4, 0)
    assert (props.redis_node_type, props.redis_num_nodes) == ("cache.t4g.micro", 1)
    assert (props.proxy_min_tasks, props.proxy_max_tasks, props.use_arm64) == (1, 4, True)
    assert (props.proxy_cpu, props.proxy_memory_mib) == (256, 512)
    assert (props.enable_x_ray, props.log_retention_days) == (False, 14)
    assert props.upstream_url == "https://api.openai.com"
    assert props.image_tag is None and props.https is False


def test_target_files_differ_only_in_props() -> None:
    local = load_props(target_props_file("local"))
    aws = load_props(target_props_file("aws"))
    assert local.upstream_url.startswith("http://127.0.0.1:")
    assert local.image_tag == "local"
    assert aws.image_tag is None and aws.upstream_url == "https://api.openai.com"


def test_context_overrides_the_file(tmp_path: Path) -> None:
    props_file = tmp_path / "p.json"
    props_file.write_text(json.dumps({"imageTag": "a", "proxyMaxTasks": 3}))
    props = load_props(props_file, {"imageTag": "b", "proxyMinTasks": "2", "@aws-cdk/x:flag": True})
    assert (props.image_tag, props.proxy_min_tasks, props.proxy_max_tasks) == ("b", 2, 3)


def test_https_follows_domain_or_certificate() -> None:
    assert parse_props({"domainName": "api.example.com"}).https is True
    assert parse_props({"existingCertificateArn": "arn:aws:acm:eu-central-1:1:certificate/x"}).https is True
    assert parse_props({"domainName": "api.example.com", "enableHttps": False}).https is False


@pytest.mark.parametrize(
    ("props", "named"),
    [
        ({"auroraMinCapacity": 8, "auroraMaxCapacity": 4}, "auroraMinCapacity"),
        ({"auroraMinCapacity": 0.7}, "auroraMinCapacity"),
        ({"proxyMinTasks": 3, "proxyMaxTasks": 2}, "proxyMaxTasks"),
        ({"vpcCidr": "10.0.0.0/33"}, "vpcCidr"),
        ({"vpcCidr": "10.0.0.1/16"}, "vpcCidr"),
        ({"vpcCidr": "10.0.0.0/26"}, "vpcCidr"),
        ({"enableHttps": True}, "enableHttps"),
        ({"hostedZoneId": "Z1", "hostedZoneName": "example.com"}, "hostedZoneId"),
        ({"hostedZoneId": "Z1"}, "hostedZoneName"),
        (
            {"domainName": "api.other.org", "hostedZoneId": "Z1", "hostedZoneName": "example.com"},
            "domainName",
        ),
        ({"existingVpcId": "my-vpc"}, "existingVpcId"),
        ({"existingCertificateArn": "cert-1"}, "existingCertificateArn"),
        ({"logRetentionDays": 10}, "logRetentionDays"),
        ({"proxyCpu": 300}, "proxyCpu"),
        ({"proxyMemoryMib": 4096}, "proxyMemoryMib"),
        ({"natGateways": 3}, "natGateways"),
        ({"redisNodeType": "t4g.micro"}, "redisNodeType"),
        ({"upstreamUrl": "api.openai.com"}, "upstreamUrl"),
        ({"logLevel": "loud"}, "logLevel"),
        ({"imageTag": "bad tag"}, "imageTag"),
        ({"proxyMaxTasks": "many"}, "proxyMaxTasks"),
        ({"natGateway": 1}, "natGateway"),
    ],
)
def test_bad_props_name_the_prop(props: dict[str, object], named: str) -> None:
    with pytest.raises(PropsError) as caught:
        parse_props(props)
    assert named in str(caught.value)


def test_bad_props_file(tmp_path: Path) -> None:
    with pytest.raises(PropsError, match="does not exist"):
        load_props(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PropsError, match="not valid JSON"):
        load_props(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    with pytest.raises(PropsError, match="JSON object"):
        load_props(listed)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"imageTg": "x"}))
    with pytest.raises(
        PropsError, match=r"unknown prop 'imageTg'.*typo.json|typo.json.*unknown prop 'imageTg'"
    ):
        load_props(typo)
