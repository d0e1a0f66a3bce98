"""`devenv up`'s second half: deploy the CDK app to the emulator, then realize it.

The cloud assembly is synthesized once per change of its inputs. An unchanged assembly is created through
the CloudFormation API (the same template; no CDK CLI start-up); a changed one goes through the real
`cdk deploy`. The realizer then runs what was deployed, and `up` waits until a request through the ALB
mirror succeeds.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.config import Settings
from devenv.errors import ServiceFailedError
from devenv.realize import stack_metrics
from devenv.realize.alb import AlbMirror
from devenv.realize.metrics import MetricsCollector
from devenv.realize.realizer import LocalData, Realizer
from devenv.runtime.progress import Progress
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.services import llmproxy
from devenv.targets import cdk, deployment, local, scaling
from devenv.targets.deployment import Inputs

DEFAULT_UPSTREAM_PORT = 8081  # what stack/props/local.json points the proxy at
MANAGEMENT_TOKEN_OUTPUT = "ManagementTokenSecretArn"
# every service whose client the deploy, the realizer and its metrics make (see load_sdk_models)
SDK_SERVICES = (
    "cloudformation",
    "application-autoscaling",
    "ecs",
    "secretsmanager",
    "ssm",
    "rds",
    "elasticache",
    "elbv2",
    "servicediscovery",
    "cloudwatch",
)


@dataclass
class RealizedStack:
    """The running realizer and what the deploy produced."""

    realizer: Realizer
    thread: threading.Thread
    stop: threading.Event
    outputs: dict[str, str]
    alb_url: str
    metrics: MetricsCollector | None = None

    def shutdown(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
        self.stop.set()
        self.thread.join()
        self.realizer.shutdown()


def synthesize(
    settings: Settings, state: StateDir, upstream_port: int, progress: Progress
) -> tuple[Inputs, cdk.Assembly]:
    """The cloud assembly of LlmProxyStack for this machine (the synth step); needs no running service,
    so `up` runs it while the services start."""
    context = (
        {} if upstream_port == DEFAULT_UPSTREAM_PORT else {"upstreamUrl": f"http://127.0.0.1:{upstream_port}"}
    )
    cache_root = settings.cdk_cache_dir or state.root
    props = cdk.props_file(settings.stack_dir, "local")
    inputs = Inputs(
        cache_root, settings.stack_dir, props, context, settings.region, state.log_for(cdk.LOG_NAME)
    )
    return inputs, deployment.synth(inputs, progress)


def load_sdk_models(settings: Settings, emulator_endpoint: str) -> None:
    """Make (and drop) a client of each service the deploy and the realizer call, in boto3's default
    session where theirs come from: reading the SDK's models costs 0.4-1 s, which `up` spends while the
    emulator loads instead of after it."""
    for service in SDK_SERVICES:
        local.client(service, emulator_endpoint, settings.region)


def deploy(
    settings: Settings,
    emulator_endpoint: str,
    inputs: Inputs,
    assembly: cdk.Assembly,
    progress: Progress,
    warn: Callable[[str], None],
) -> dict[str, str]:
    """Deploy the assembly of LlmProxyStack to the emulator (the bootstrap and deploy steps); returns its
    outputs.

    An emulator that restored the saved local cloud of this very assembly needs no deploy; of another
    assembly, the deploy updates the restored stack. A saved cloud the emulator could not restore is
    reported through `warn` (the deploy then starts from scratch)."""
    total = len(assembly.template().get("Resources", {}))
    saved = deployment.saved_cloud(emulator_endpoint)
    if saved is not None and saved.get("problem"):
        warn(f"{saved['problem']}; deploying from scratch")
    report = deployment.unchanged(emulator_endpoint, settings.region, cdk.STACK_NAME, assembly, saved)
    if report is not None:
        progress.done("bootstrap", "restored with the saved local cloud")
        progress.done(
            "deploy", f"restored from the saved local cloud: resources {len(report.resources)}/{total}"
        )
    elif assembly.cached:
        progress.start("bootstrap", "checking the CDK bootstrap stack")
        created = local.ensure_bootstrapped(emulator_endpoint, settings.region, settings.stack_dir)
        progress.done("bootstrap", f"{local.BOOTSTRAP_STACK} created" if created else "already bootstrapped")
        restored = saved is not None and saved.get("restored")
        how = "updating the restored stack" if restored else "assembly unchanged"
        progress.start("deploy", f"CloudFormation: {cdk.STACK_NAME}, {total} resources ({how})")
        report = local.deploy_template_report(
            emulator_endpoint, assembly.template_path, cdk.STACK_NAME, region=settings.region
        )
        deployment.record_deployed(emulator_endpoint, cdk.STACK_NAME, assembly)
        progress.done("deploy", f"resources {len(report.resources)}/{total}")
    else:
        report = deployment.deploy_local(inputs, emulator_endpoint, progress, assembly=assembly)
    if not settings.autoscaling:
        resources = scaling.suspend_all(
            local.client("application-autoscaling", emulator_endpoint, settings.region)
        )
        progress.extend(
            "deploy",
            f"autoscaling off: dynamic scaling suspended (SuspendedState) for {', '.join(resources) or 'no service'}",
        )
    return dict(report.outputs)


def keep_management_token(state: StateDir, realizer: Realizer, outputs: dict[str, str]) -> None:
    """Where `devenv token create` and the load tests find the local stack's management token (0600)."""
    arn = outputs.get(MANAGEMENT_TOKEN_OUTPUT)
    if not arn:
        return
    token = realizer.secretsmanager.get_secret_value(SecretId=arn)["SecretString"]
    path = state.run / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    llmproxy.write_secrets(state, {**values, "MANAGEMENT_TOKEN": token})


def realize(
    settings: Settings,
    state: StateDir,
    supervisor: Supervisor,
    emulator_endpoint: str,
    data: LocalData,
    ca_file: Path,
    outputs: dict[str, str],
    interrupted: threading.Event,
    alb_ports: tuple[int, int],
    runtime: str = "native",
) -> RealizedStack:
    """Start the realizer (tasks as processes, or as containers with runtime docker) and wait until a
    request through the ALB mirror succeeds. `alb_ports` (HTTP, HTTPS) are the ones `up` claimed: the
    settings' unless --auto-ports moved a busy one."""
    alb_port, alb_https_port = alb_ports
    realizer = Realizer(
        supervisor,
        emulator_endpoint,
        settings.region,
        alb=None,
        data=data,
        extra_env={"REDIS_CA_FILE": str(ca_file)},
        fault_hold_s=settings.fault_hold_s,
        runtime=runtime,
        llmproxy_source=llmproxy.source_dir(settings),
    )
    realizer.alb = AlbMirror(
        realizer.elbv2,
        emulator_endpoint,
        supervisor,
        state.root / "run",
        alb_port,
        alb_https_port,
        access_log_dir=state.root / "run" / "alb" / "access" if settings.metrics else None,
        time_scale=settings.time_scale,
    )
    keep_management_token(state, realizer, outputs)
    stop = threading.Event()
    thread = threading.Thread(target=realizer.run, args=(stop,), name="realizer", daemon=True)
    thread.start()
    handle = RealizedStack(realizer, thread, stop, outputs, f"http://localhost:{alb_port}")
    if settings.metrics:
        handle.metrics = stack_metrics.start_collector(realizer, settings.time_scale)
    try:
        wait_for_alb(handle, max(60.0, settings.ready_timeout_s * 2), interrupted)
    except ServiceFailedError:
        handle.shutdown()
        raise
    return handle


def wait_for_alb(handle: RealizedStack, timeout_s: float, interrupted: threading.Event) -> None:
    """Until GET /health through the ALB mirror answers 200 (a task is up behind it), or `interrupted`."""
    url = f"http://127.0.0.1:{handle.alb_url.rsplit(':', 1)[1]}/health"
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if interrupted.is_set():
            raise ServiceFailedError("interrupted while waiting for the stack", "run `devenv up` again")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.1)
    problems = "; ".join(sorted(set(handle.realizer.problems.values()))) or "none reported"
    raise ServiceFailedError(
        f"the stack did not answer through the ALB mirror within {timeout_s:.0f} s ({url}: {last}); "
        f"realizer problems: {problems}",
        "see `devenv status` and `devenv logs` (the task and alb logs)",
    )


def outputs_fact(outputs: dict[str, Any]) -> dict[str, Any]:
    """The stack outputs worth showing in `status` (ARNs and endpoints, never secret values)."""
    return {key: value for key, value in outputs.items() if key != "NextStep"}
