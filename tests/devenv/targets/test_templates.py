"""Which template resources a deploy must create (conditions evaluated), the synth cache key, and one synth
per key when several `devenv` processes share the cache."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devenv.errors import UsageError
from devenv.targets import cdk, templates

TEMPLATE = {
    "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "InUsEast": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
        "ProdOrUs": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "InUsEast"}]},
        "Odd": {"Fn::Equals": [{"Fn::Select": [0, ["a"]]}, "a"]},
    },
    "Resources": {
        "Always": {"Type": "AWS::SSM::Parameter"},
        "ProdOnly": {"Type": "AWS::SSM::Parameter", "Condition": "IsProd"},
        "UsOrProd": {"Type": "AWS::SSM::Parameter", "Condition": "ProdOrUs"},
        "Unknown": {"Type": "AWS::SSM::Parameter", "Condition": "Odd"},
    },
}


def ids(resources: list[templates.TemplateResource]) -> list[str]:
    return [r.logical_id for r in resources]


def test_conditions_decide_which_resources_must_exist() -> None:
    required, unknown = templates.expected_resources(TEMPLATE, {}, "us-east-1", "123456789012", "S")
    assert ids(required) == ["Always", "UsOrProd"] and ids(unknown) == ["Unknown"]
    required, _ = templates.expected_resources(TEMPLATE, {"Env": "prod"}, "eu-west-1", "123456789012", "S")
    assert ids(required) == ["Always", "ProdOnly", "UsOrProd"]
    required, _ = templates.expected_resources(TEMPLATE, {}, "eu-west-1", "123456789012", "S")
    assert ids(required) == ["Always"]


def test_a_missing_or_broken_template_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        templates.load_template(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text(json.dumps({"NoResources": {}}))
    with pytest.raises(UsageError):
        templates.load_template(tmp_path / "bad.json")


def test_yaml_short_forms_are_read(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Value: !Ref X\n"
    )
    assert templates.load_template(tmp_path / "t.yaml")["Resources"]["P"]["Properties"]["Value"] == {
        "Ref": "X"
    }


def test_the_synth_cache_key_follows_sources_props_and_context(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    (stack / "constructs").mkdir(parents=True)
    (stack / "app.py").write_text("print('app')\n")
    (stack / "cdk.json").write_text("{}")
    (stack / "package.json").write_text("{}")
    props = tmp_path / "props.json"
    props.write_text('{"logLevel": "info"}')
    base = cdk.assembly_digest(stack, props, {})
    assert cdk.assembly_digest(stack, props, {}) == base
    (stack / "package.json").write_text('{"scripts": {}}')  # not an input of the synth
    assert cdk.assembly_digest(stack, props, {}) == base
    assert cdk.assembly_digest(stack, props, {"proxyMaxTasks": "6"}) != base
    props.write_text('{"logLevel": "warn"}')
    changed_props = cdk.assembly_digest(stack, props, {})
    assert changed_props != base
    (stack / "constructs" / "cache.py").write_text("X = 1\n")
    assert cdk.assembly_digest(stack, props, {}) != changed_props


# A CDK app's synth entry point as devenv calls it, slow enough for a second caller to arrive during it;
# each run appends a line to runs.log (the real app takes ~20 s to synthesize).
TINY_APP = """
import json, time
from pathlib import Path

class PropsError(Exception):
    pass

def synthesize(props, outdir, context):
    with open(Path(__file__).parent / "runs.log", "a") as log:
        log.write("run\\n")
    time.sleep(1.5)
    outdir.mkdir(parents=True)
    (outdir / "manifest.json").write_text("{}")
    (outdir / "LlmProxyStack.template.json").write_text(json.dumps({"Resources": {}}))
"""


def test_two_synths_of_the_same_inputs_into_one_cache_run_the_app_once(tmp_path: Path) -> None:
    """Two `devenv` processes sharing `cdk_cache_dir` (here two threads: the lock is a file lock) that
    need the same assembly: one synthesizes, the other waits and takes its result."""
    app = tmp_path / "tinyapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "config.py").write_text("from tinyapp.app import PropsError\n")
    (app / "app.py").write_text(TINY_APP)
    cache = tmp_path / "cache"

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: cdk.synthesize(cache, app, None, {"n": 1}), range(2))

    assert (app / "runs.log").read_text().splitlines() == ["run"]
    assert first.directory == second.directory and first.template() == {"Resources": {}}
    assert sorted([first.cached, second.cached]) == [False, True]
    assert not list(cache.glob("cdk/*.partial"))


def test_the_bootstrap_templates_short_forms_read_as_cloudformation_reads_them(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n    Properties:\n"
        "      Name: !Sub '/cdk-bootstrap/${Qualifier}/version'\n"
        "      Value: !GetAtt Bucket.Arn\n"
        "      Tags: !If [HasTags, !Split [',', !Ref Tags], !Ref AWS::NoValue]\n"
    )
    properties = templates.load_template(tmp_path / "t.yaml")["Resources"]["P"]["Properties"]
    assert properties["Name"] == {"Fn::Sub": "/cdk-bootstrap/${Qualifier}/version"}
    assert properties["Value"] == {"Fn::GetAtt": ["Bucket", "Arn"]}
    assert properties["Tags"] == {
        "Fn::If": ["HasTags", {"Fn::Split": [",", {"Ref": "Tags"}]}, {"Ref": "AWS::NoValue"}]
    }
