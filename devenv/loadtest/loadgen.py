"""`devenv loadtest --on loadgen`: a run through the deployed load generator stack (LlmProxyLoadGenStack).

The stack's Locust master runs the profile's shape on the stack's workers and, when the run stops, writes
its summary and timeline to the stack's bucket under runs/<start time>/ (loadtests/locustfile.py). devenv
finds the stack by its outputs, starts the run through the master's web API (POST /swarm with the profile,
users, length and the run's thresholds), shows its progress (GET /stats/requests), stops it (POST /stop)
when it outlives its plan or on Ctrl-C, and collects the results into a run folder like a local run's.

The master's web UI has no ingress on AWS: an operator forwards a local port to the master task (SSM port
forwarding through ECS Exec) and passes `--master-url`; locally the realized master task's host port is in
the state of `devenv up`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devenv.errors import TargetError
from devenv.loadtest.runner import HTML_FILE, RunPlan, with_signals
from devenv.loadtest.summary import SUMMARY_FILE, TIMELINE_FILE, degrade
from devenv.runtime.state import StateDir
from devenv.stack_names import LOADGEN_OUTPUTS, LOADGEN_STACK_NAME, LOCUST_WEB_PORT
from devenv.targets import signals
from devenv.targets.aws_api import AwsApi
from devenv.targets.endpoints import Endpoint, Target, resolve

RESULTS_PREFIX = "runs/"  # where the master writes a run (the only prefix its task role may write)
RESULTS_WAIT_S = 60.0  # after the run stopped: the master revokes the run's tokens, then writes
STOP_GRACE_S = 120.0  # past the planned length before devenv stops the run itself
POLL_S = 1.0
RUNNING_STATES = ("spawning", "running")
# The master's own report of the run, fetched after it stopped (the stats stay until its next run).
MASTER_FILES = {
    HTML_FILE: "/stats/report?download=1",
    "locust_stats.csv": "/stats/requests/csv",
    "locust_failures.csv": "/stats/failures/csv",
}


@dataclass(frozen=True)
class LoadGenStack:
    """The deployed load generator stack, from its outputs."""

    cluster: str
    master_service: str
    worker_service: str
    bucket: str
    target_url: str


def find_stack(aws: AwsApi) -> LoadGenStack:
    """The stack's outputs; a set-up error naming the deploy command when it is not deployed."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = aws.make_client("cloudformation").describe_stacks(StackName=LOADGEN_STACK_NAME)["Stacks"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", exc))
        if "does not exist" in message:
            raise TargetError(
                f"the load generator stack {LOADGEN_STACK_NAME} is not deployed on the {aws.name} target",
                f"deploy it with `devenv deploy --stack loadgen --target {aws.name}` (after the proxy stack), "
                "or run the load test from this machine (without --on loadgen)",
            ) from None
        raise TargetError(f"cannot read the stack {LOADGEN_STACK_NAME}: {message}") from None
    except BotoCoreError as exc:
        raise TargetError(f"cannot read the stack {LOADGEN_STACK_NAME}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in LOADGEN_OUTPUTS if key not in outputs]
    if missing:
        raise TargetError(
            f"the stack {LOADGEN_STACK_NAME} lacks the outputs {', '.join(missing)}",
            f"deploy the current load generator stack: `devenv deploy --stack loadgen --target {aws.name}`",
        )
    return LoadGenStack(
        cluster=outputs["LoadGenClusterName"],
        master_service=outputs["LoadGenMasterServiceName"],
        worker_service=outputs["LoadGenWorkerServiceName"],
        bucket=outputs["LoadGenResultsBucket"],
        target_url=outputs["LoadGenTargetUrl"],
    )


def target(stack: LoadGenStack, aws: AwsApi, state: StateDir, url: str | None) -> Endpoint:
    """Where the stack's workers send the load: `--url`, else the stack's target (LoadGenTargetUrl, the
    proxy's ALB); locally that DNS name resolves nowhere, so the ALB mirror of `devenv up` stands in."""
    if url:
        return Endpoint(url.rstrip("/"), None, "--url")
    if aws.name != "local":
        return Endpoint(stack.target_url.rstrip("/"), None, f"the target of {LOADGEN_STACK_NAME}")
    mirror = resolve(Target.local, state)
    return Endpoint(mirror.url, None, f"{mirror.source}, for the target of {LOADGEN_STACK_NAME}")


def master_url(stack: LoadGenStack, aws: AwsApi, state: StateDir, given: str | None) -> str:
    """The master's web API: `--master-url`, else (local) the realized master task's host port."""
    if given:
        return given.rstrip("/")
    if aws.name != "local":
        raise TargetError(
            "the load generator's Locust master has no public endpoint (its web UI admits no traffic); "
            "forward a local port to it and pass --master-url",
            _port_forwarding(stack, aws),
        )
    services: dict[str, Any] = state.read().get("services") or {}
    for service in services.values():
        port = (service.get("host_ports") or {}).get(str(LOCUST_WEB_PORT))
        if service.get("ecs_service") == stack.master_service and service.get("pid") and port:
            return f"http://127.0.0.1:{port}"
    raise TargetError(
        f"the load generator's Locust master (service {stack.master_service}) runs no task here",
        f"`devenv status` lists the tasks and `devenv logs {stack.master_service}` its log; the service needs "
        "a desired count of 1 (the loadGenImageTag prop set)",
    )


def _port_forwarding(stack: LoadGenStack, aws: AwsApi) -> str:
    """The SSM command that forwards 127.0.0.1:8089 to the running master task (ECS Exec's agent)."""
    target = f"ecs:{stack.cluster}_<task id>_<container runtime id>"
    try:
        ecs = aws.make_client("ecs")
        arns = ecs.list_tasks(
            cluster=stack.cluster, serviceName=stack.master_service, desiredStatus="RUNNING"
        )
        tasks = (
            ecs.describe_tasks(cluster=stack.cluster, tasks=arns["taskArns"][:1])["tasks"]
            if arns["taskArns"]
            else []
        )
        if tasks:
            task_id = tasks[0]["taskArn"].rsplit("/", 1)[-1]
            target = f"ecs:{stack.cluster}_{task_id}_{tasks[0]['containers'][0]['runtimeId']}"
    except Exception:  # any failure (credentials, no task yet) leaves the placeholder in the command
        pass
    return (
        f"aws ssm start-session --target {target} --document-name AWS-StartPortForwardingSession "
        f"--parameters portNumber={LOCUST_WEB_PORT},localPortNumber={LOCUST_WEB_PORT}; then "
        f"--master-url http://127.0.0.1:{LOCUST_WEB_PORT}"
    )


class Master:
    """A Locust master's web API (Locust's own routes)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self._call("/stats/requests")))

    def swarm(self, fields: dict[str, str]) -> dict[str, Any]:
        return dict(json.loads(self._call("/swarm", urllib.parse.urlencode(fields).encode())))

    def stop(self) -> None:
        self._call("/stop", b"")

    def download(self, path: str) -> bytes:
        return self._call(path)

    def _call(self, path: str, data: bytes | None = None) -> bytes:
        try:
            with urllib.request.urlopen(self.url + path, data=data, timeout=self.timeout_s) as response:
                body: bytes = response.read()
                return body
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TargetError(
                f"the load generator's Locust master at {self.url} does not answer ({path}: {reason})",
                "locally: `devenv status` and `devenv logs locust-master`; on AWS: is the port forwarding "
                "to the master task still open?",
            ) from None


def connected_workers(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in stats.get("workers") or [] if w.get("state") != "missing"]


def check_ready(master: Master, stack: LoadGenStack) -> int:
    """The master answers, has workers and runs nothing; the number of its workers."""
    stats = master.stats()
    workers = connected_workers(stats)
    if not workers:
        raise TargetError(
            f"no Locust worker is connected to the load generator's master at {master.url}",
            f"the service {stack.worker_service} must run tasks (`devenv status`, `devenv logs "
            f"{stack.worker_service}`; on AWS its desired count, the loadGenWorkers prop)",
        )
    if stats.get("state") in RUNNING_STATES:
        raise TargetError(
            f"the load generator's master at {master.url} is already running a load test",
            "wait for its end, or stop it from its web UI",
        )
    return len(workers)


def swarm_fields(plan: RunPlan, host: str) -> dict[str, str]:
    """Every option of a run, each time: the master keeps what a swarm set for the runs after it."""
    return {
        "host": host,
        "load_profile": plan.profile or "smoke",
        "load_users": str(plan.users or 0),
        "load_duration": plan.duration or "",
        "load_step": plan.ramp_step or "",
        "thresholds_yaml": plan.thresholds_file.read_text(),
    }


@dataclass
class WorkerWatch:
    """The master's workers over the run: which were there at the start, which went missing."""

    started: dict[str, float] = field(default_factory=dict)  # id -> wall clock first seen
    lost: dict[str, str] = field(default_factory=dict)  # id -> how

    def look(self, stats: dict[str, Any], started_at: float, say: Callable[[str], None]) -> None:
        present = {w["id"]: w["state"] for w in stats.get("workers") or []}
        for worker_id, worker_state in present.items():
            self.started.setdefault(worker_id, time.time())
            if worker_state == "missing" and worker_id not in self.lost:
                self._lose(worker_id, "stopped reporting to the master (missing)", started_at, say)
        for worker_id in self.started:
            if worker_id not in present and worker_id not in self.lost:
                self._lose(worker_id, "left the master", started_at, say)

    def _lose(self, worker_id: str, how: str, started_at: float, say: Callable[[str], None]) -> None:
        line = f"worker {worker_id} {how} {time.time() - started_at:.1f} s into the run"
        self.lost[worker_id] = line
        say(line)


def run(
    plan: RunPlan, stack: LoadGenStack, master: Master, workers: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Start the run on the master, follow it to its end, collect its results: the summary of a local run,
    with `load_generator` (stack, master, workers, where the results came from)."""
    from botocore.exceptions import BotoCoreError, ClientError

    assert plan.aws is not None  # the stack was found through the target's AWS APIs
    s3 = plan.aws.make_client("s3")
    sampler = signals.TaskCountSampler(plan.aws).start()
    try:
        before = _runs(s3, stack.bucket)
        answer = master.swarm(swarm_fields(plan, plan.endpoint.url))
        if not answer.get("success"):
            raise TargetError(f"the load generator's master refused the run: {answer.get('message')}")
        started_at = time.time()
        watch = WorkerWatch()
        prefix = _follow(plan, stack, master, s3, before, watch, started_at, progress)
        summary: dict[str, Any] = json.loads(_get(s3, stack.bucket, prefix + SUMMARY_FILE))
        (plan.run_dir / TIMELINE_FILE).write_bytes(_get(s3, stack.bucket, prefix + TIMELINE_FILE))
    except (ClientError, BotoCoreError) as exc:
        sampler.stop()
        raise TargetError(
            f"the load generator's results bucket s3://{stack.bucket} cannot be read: {exc}",
            "check the target's AWS credentials (on AWS: s3:ListBucket and s3:GetObject on the bucket)",
        ) from None
    except BaseException:
        sampler.stop()
        raise
    summary.setdefault("errors", [])
    for name, path in MASTER_FILES.items():
        try:
            (plan.run_dir / name).write_bytes(master.download(path))
        except TargetError as exc:
            summary["errors"].append(f"{name}: {exc.message}")
    summary["workers"] = [
        {
            "index": index,
            "pid": row["pid"],
            "requests": row["requests"],
            "exit": f"a task of {stack.worker_service}",
            "lost": False,
        }
        for index, row in enumerate(summary.get("workers") or [], start=1)
    ]
    summary["load_generator"] = {
        "on": "loadgen",
        "stack": LOADGEN_STACK_NAME,
        "master": master.url,
        "workers": workers,
        "results": f"s3://{stack.bucket}/{prefix}",
    }
    return with_signals(plan, degrade(summary, list(watch.lost.values())), sampler)


def _follow(
    plan: RunPlan,
    stack: LoadGenStack,
    master: Master,
    s3: Any,
    before: set[str],
    watch: WorkerWatch,
    started_at: float,
    progress: Callable[[str], None],
) -> str:
    """Until the master wrote the run's summary to the bucket (stopping the run when it outlives its plan,
    or on Ctrl-C); the run's key prefix."""
    started = time.monotonic()
    deadline = started + plan.planned_s + STOP_GRACE_S
    next_note = started + 10.0
    stopped_at: float | None = None
    while True:
        try:
            prefix = _new_run(s3, stack.bucket, before)
            if prefix is not None:
                return prefix
            now = time.monotonic()
            if stopped_at is None:
                stats = master.stats()
                watch.look(stats, started_at, progress)
                if now >= next_note:
                    progress(
                        f"  {now - started:.0f}s of ~{plan.planned_s:.0f}s: {stats.get('user_count', 0)} users, "
                        f"{stats.get('total_rps', 0):.0f} RPS, {len(connected_workers(stats))} workers"
                    )
                    next_note = now + 10.0
                if stats.get("state") == "stopped" and now - started > 5.0:
                    stopped_at = now  # the master ended the run: its results are on their way
                elif now > deadline:
                    progress("the run outlived its planned length; stopping it")
                    master.stop()
                    stopped_at = now
            elif now - stopped_at > RESULTS_WAIT_S:
                raise TargetError(
                    f"the load generator's master stopped the run but wrote no results to "
                    f"s3://{stack.bucket}/{RESULTS_PREFIX} within {RESULTS_WAIT_S:.0f} s",
                    f"its log says why: `devenv logs {stack.master_service}` (local) or the stack's log group",
                )
            time.sleep(POLL_S)
        except KeyboardInterrupt:
            if stopped_at is not None:
                raise
            progress("interrupted: stopping the run on the master (the report covers what ran)")
            master.stop()
            stopped_at = time.monotonic()


def _runs(s3: Any, bucket: str) -> set[str]:
    """The run folders in the bucket (runs/<start time>/)."""
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RESULTS_PREFIX):
        found.update(o["Key"].rsplit("/", 1)[0] + "/" for o in page.get("Contents", []))
    return found


def _new_run(s3: Any, bucket: str, before: set[str]) -> str | None:
    """A run folder that was not there before this run and holds its summary (written last but one)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RESULTS_PREFIX):
        keys = {o["Key"] for o in page.get("Contents", [])}
        for key in sorted(keys):
            folder = key.rsplit("/", 1)[0] + "/"
            if folder not in before and key.endswith("/" + SUMMARY_FILE) and folder + TIMELINE_FILE in keys:
                return folder
    return None


def _get(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body
