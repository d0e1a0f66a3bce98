"""The CDK app: `python app.py` (run by the CDK CLI, see cdk.json) or `synthesize()` from Python.

Props come from `-c propsFile=props/<target>.json` (or `--props FILE` in devenv), overlaid with any
context key that names a prop (`-c imageTag=v1.2.3`). cdk-nag's AwsSolutions checks run on every synth:
an unacknowledged finding fails it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script from stack/: make the repository root importable (and not stack/ itself, whose
    # `constructs/` folder would shadow the `constructs` library).
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(_here)]
    sys.path.insert(0, str(Path(_here).parent))

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

STACK_DIR = Path(__file__).resolve().parent
CDK_JSON = STACK_DIR / "cdk.json"
DEFAULT_OUTDIR = STACK_DIR / "cdk.out"


def cdk_json_context() -> dict[str, Any]:
    """The feature flags of cdk.json: a bare App() would not read them."""
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def build_app(
    props_file: Path | None = None,
    context: Mapping[str, Any] | None = None,
    outdir: Path | None = None,
    nag: bool = True,
) -> Any:
    """An App holding LlmProxyStack and LoadGenStack built from the props; nothing is synthesized yet.

    `context` adds to (and overrides) cdk.json's; a `propsFile` key in it is used when `props_file`
    is None. The stack's account/region come from CDK_DEFAULT_ACCOUNT/REGION when set (needed only to
    import an existing VPC).
    """
    import aws_cdk as cdk
    import cdk_nag

    from stack.config import PropsError, load_props
    from stack.llm_proxy_stack import LlmProxyStack
    from stack.loadgen_stack import LoadGenStack
    from stack.names import LOADGEN_STACK_NAME, STACK_NAME

    allowed = {*_prop_keys(), "propsFile"}
    unknown = sorted(
        key for key in (context or {}) if ":" not in key and "@" not in key and key not in allowed
    )
    if unknown:
        raise PropsError(f"unknown prop(s): {', '.join(unknown)}; see stack/config.py for the props")
    merged = {**cdk_json_context(), **(context or {})}
    app = cdk.App(context=merged, outdir=str(outdir) if outdir else None)
    if props_file is None:
        raw = app.node.try_get_context("propsFile")
        props_file = (STACK_DIR / raw).resolve() if raw else None
    all_context = {key: app.node.try_get_context(key) for key in _prop_keys()}
    props = load_props(props_file, {key: value for key, value in all_context.items() if value is not None})
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    proxy = LlmProxyStack(app, STACK_NAME, props=props, env=env)
    # In every assembly (so the proxy stack's exports it imports never come and go), deployed only when
    # asked: `devenv deploy --stack loadgen`, `cdk deploy LlmProxyLoadGenStack`.
    LoadGenStack(
        app,
        LOADGEN_STACK_NAME,
        props=props,
        vpc=proxy.vpc,
        subnets=proxy.app_subnets,
        target_url=proxy.url,
        management_token=proxy.management_token,
        env=env,
    )
    if nag:
        cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    return app


def synthesize(
    props_file: Path | None = None, outdir: Path = DEFAULT_OUTDIR, context: Mapping[str, Any] | None = None
) -> Path:
    """Synthesize the cloud assembly into `outdir`; returns it (the template is LlmProxyStack.template.json).

    Raises stack.config.PropsError for bad props.
    """
    outdir = Path(outdir).resolve()
    app = build_app(props_file, context, outdir)
    assembly = app.synth()
    return Path(assembly.directory)


def _prop_keys() -> list[str]:
    from stack.config import StackProps

    return [field.alias or name for name, field in StackProps.model_fields.items()]


def main() -> int:
    from stack.config import PropsError

    try:
        build_app(outdir=None).synth()
    except PropsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
