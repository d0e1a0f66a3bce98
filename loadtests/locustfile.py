"""LLM Proxy traffic for Locust: chat completions that miss and hit the cache, SSE streams, embeddings,
model listings and a small share of management calls.

Speaks only the public contract (PROXY-CONTRACT.md), so it runs unchanged against the upstream Go proxy.
Set-up (not counted): a project and a pool of tokens are created through the management API when a
test starts, and revoked when it stops (devenv.loadtest.provision). With `--api-key` it talks to an OpenAI-compatible server
directly (no provisioning, no management calls), e.g. the mock upstream for a baseline.

Distributed (`devenv loadtest --workers N`, or Locust's --master/--worker by hand): the master keeps the
run's state, provisions the pool and sends it to the workers (a custom message, before their users
spawn); workers report their requests and cache counts with their stats, so the summary counts requests
per worker.

Streams are recorded twice: `chat stream` (the full stream, a real request) and
`chat stream: first token` (time to the first content token, a metric only, left out of the totals, also
Locust's own aggregated row). Secrets (management token, API keys) come from the environment and are kept
out of the web UI, whose page source would show them.

Run it through `devenv loadtest` (profiles, thresholds, reports), or by hand:
    locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 --management-token ...
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import gevent
import locust.runners
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from devenv.errors import DevenvError
from devenv.loadtest import provision
from devenv.loadtest import thresholds as th
from devenv.loadtest.figures import Sample
from devenv.loadtest.profiles import PROFILES
from devenv.loadtest.summary import (
    SUMMARY_FILE,
    TIMELINE_FILE,
    RunState,
    build_summary,
    current_run,
    start_run,
)
from devenv.targets.management import ManagementClient

HERE = Path(__file__).parent
log = logging.getLogger("loadtest")

RESULTS_BUCKET_ENV = "LOADTEST_RESULTS_BUCKET"  # the load generator stack's bucket (its tasks' environment)
RESULTS_PREFIX = "runs/"  # the only prefix the master's task role may write
CHAT_MISS = "chat: cache miss"
CHAT_HIT = "chat: cache hit"
CHAT_STREAM = "chat stream"
FIRST_TOKEN = "chat stream: first token"
EMBEDDINGS = "embeddings"
MODELS = "models"
MANAGE_TOKEN = "manage: get token"
MANAGE_PROJECT = "manage: get project"

# Cache hits: a few fixed prompts; misses: unique prompts; both ask with `Cache-Control: public, max-age=N`.
CACHED_PROMPTS = [f"Summarise the proxy's caching rules, variant {i}." for i in range(8)]
EMBEDDING_INPUTS = [f"load test embedding input number {i}" for i in range(16)]
POOL_MESSAGE = "devenv-token-pool"  # master -> workers: the run's pool, before their users spawn
# Locust's default of 3 s between a worker's stats reports makes the master's per-second timeline come in
# 3 s lumps; twice a second keeps it close to a single process's.
WORKER_REPORT_INTERVAL_S = 0.5


class Provisioned:
    """The token pool of the current run (None in direct mode): one per process, replaced per run."""

    pool: provision.TokenPool | None = None
    run_id: str = ""
    next_token = itertools.count()


class WorkerTally:
    """A worker's cache counts since its last report to the master (the run state lives on the master)."""

    cache: ClassVar[Counter[str]] = Counter()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--load-profile", default="", help=f"load profile ({', '.join(PROFILES)}); used by shapes.py"
    )
    parser.add_argument("--load-users", type=int, default=0, help="peak users of the profile [its default]")
    parser.add_argument(
        "--load-duration", default="", help="length of the profile, e.g. 20s, 5m [its default]"
    )
    parser.add_argument("--load-step", default="", help="length of a ramp step, e.g. 10s [10s]")
    parser.add_argument("--thresholds", default=str(HERE / "thresholds.yaml"), help="thresholds YAML")
    parser.add_argument(
        "--thresholds-yaml",
        default="",
        include_in_web_ui=False,
        help="the run's thresholds as YAML text, over --thresholds (`devenv loadtest --on loadgen` sends them "
        "with the swarm)",
    )
    parser.add_argument("--run-dir", default="", help="write summary.json and timeline.json here")
    # Secrets stay out of the web UI: its page source would hold their values (is_secret only masks the field).
    for flag, default, env_var, text in (
        (
            "--management-token",
            os.environ.get("MANAGEMENT_TOKEN", ""),
            "LOADTEST_MANAGEMENT_TOKEN",
            "bearer token of the management API (env LOADTEST_MANAGEMENT_TOKEN, MANAGEMENT_TOKEN)",
        ),
        (
            "--api-key",
            "",
            "LOADTEST_API_KEY",
            "talk to an OpenAI-compatible server directly with this key (no provisioning, no management calls)",
        ),
        (
            "--upstream-key",
            "sk-loadtest-upstream-key",
            "LOADTEST_UPSTREAM_KEY",
            "the upstream API key the run's project is created with",
        ),
    ):
        parser.add_argument(flag, default=default, env_var=env_var, include_in_web_ui=False, help=text)
    parser.add_argument("--token-pool", type=int, default=8, help="tokens provisioned per run")
    parser.add_argument("--think-time-ms", type=float, default=0.0, help="pause between a user's requests")
    parser.add_argument("--model", default="gpt-4o-mini", help="chat model")
    parser.add_argument("--embedding-model", default="text-embedding-3-small", help="embeddings model")
    parser.add_argument("--cache-max-age", type=int, default=300, help="max-age asked for cacheable requests")


def _opts(environment: Environment) -> Any:
    """The parsed command line (always set in a process started by Locust's main)."""
    assert environment.parsed_options is not None
    return environment.parsed_options


def _samples(environment: Environment) -> dict[str, Sample]:
    samples: dict[str, Sample] = {}
    for entry in list(environment.stats.entries.values()):
        sample = Sample.of(
            entry.num_requests, entry.num_failures, entry.total_response_time, entry.response_times
        )
        samples[entry.name] = samples[entry.name].plus(sample) if entry.name in samples else sample
    return samples


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    if environment.parsed_options is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(POOL_MESSAGE, _receive_pool)
        locust.runners.WORKER_REPORT_INTERVAL = WORKER_REPORT_INTERVAL_S
        return
    state = start_run(
        RunState(rules=[], sampler=lambda: _samples(environment), metric_only=frozenset({FIRST_TOKEN}))
    )
    _configure(state, environment.parsed_options)


def _configure(state: RunState, options: Any) -> None:
    """The run's profile and thresholds from the options: at start-up, and again as each run starts, since a
    master's web API sets `load_profile`, `thresholds_yaml` ... with the swarm (a stack's master serves run
    after run)."""
    state.profile = options.load_profile or None
    state.init_error = None
    try:
        if options.thresholds_yaml:
            table = th.parse(
                options.thresholds_yaml, "the thresholds sent with the run", "thresholds", state.profile
            )
        else:
            table = th.load(Path(options.thresholds), state.profile)
        state.rules = th.thresholds(table)
    except th.ThresholdError as exc:
        state.init_error = str(exc)
    if state.profile and state.profile not in PROFILES:
        state.init_error = f"unknown profile {state.profile!r}; choose one of {', '.join(PROFILES)}"
    state.setup_error = state.init_error


def _receive_pool(msg: Any, **_: Any) -> None:
    """On a worker: the pool the master provisioned for the run that is starting."""
    data = msg.data
    Provisioned.run_id = data["run_id"]
    Provisioned.pool = provision.TokenPool(data["project_id"], list(data["tokens"]))


@events.report_to_master.add_listener
def _report_to_master(data: dict[str, Any], **_: Any) -> None:
    """On a worker, with each stats report: which process it is and its cache counts since the last one."""
    data["devenv_pid"] = os.getpid()
    data["devenv_cache"] = dict(WorkerTally.cache)
    WorkerTally.cache.clear()


@events.worker_report.add_listener
def _worker_report(data: dict[str, Any], **_: Any) -> None:
    """On the master: count each worker's requests (the same reports Locust adds to its totals)."""
    state = current_run()
    if state is None or "devenv_pid" not in data:
        return
    state.worker_requests[int(data["devenv_pid"])] += sum(
        int(entry["num_requests"])
        for entry in data.get("stats", [])
        if entry["name"] not in state.metric_only
    )
    state.cache.update(data.get("devenv_cache") or {})


def _management(environment: Environment) -> ManagementClient:
    return ManagementClient(environment.host or "", _opts(environment).management_token, timeout_s=10)


def _provision(environment: Environment) -> None:
    """The run's token pool; a set-up error (a message a person can act on) when it cannot be made."""
    options = _opts(environment)
    if not options.management_token:
        raise DevenvError(
            "no management token: pass --management-token or set MANAGEMENT_TOKEN (or use --api-key)"
        )
    Provisioned.run_id = uuid.uuid4().hex[:10]
    Provisioned.pool = provision.create_pool(
        _management(environment), Provisioned.run_id, options.upstream_key, options.token_pool
    )


def _timeline(environment: Environment, state: RunState) -> None:
    """Once a second: the last second's throughput, failures and latency percentiles."""
    before = state.samples()
    last = time.time()
    while True:
        gevent.sleep(1.0)
        now_samples, now = state.samples(), time.time()
        figures = state.window_figures(now_samples, before, now - last)
        total = figures[th.TOTAL]
        runner = environment.runner
        state.timeline.append(
            {
                "t": round(now - (state.started_at or now), 2),
                "users": runner.user_count if runner else 0,
                "rps": round(total["rps"], 2),
                "failures_per_s": round(total["failures"] / (now - last), 2),
                "p50_ms": total["p50_ms"],
                "p95_ms": total["p95_ms"],
                "p99_ms": total["p99_ms"],
                "first_token_p95_ms": figures.get(FIRST_TOKEN, {}).get("p95_ms", 0.0),
            }
        )
        before, last = now_samples, now


_timeline_greenlet: gevent.Greenlet | None = None


@events.test_start.add_listener
def _test_start(environment: Environment, **_: Any) -> None:
    global _timeline_greenlet
    state = current_run()
    if state is None:
        return
    state.started_at, state.ended_at = time.time(), None
    _configure(state, _opts(environment))  # a web UI run may follow a failed one with a fixed token
    state.timeline.clear()
    state.stages.clear()
    state.first_breach_at_s = None
    state.cache.clear()
    state.worker_requests.clear()
    Provisioned.pool = None
    if state.setup_error is None and not _opts(environment).api_key:
        try:
            _provision(environment)
        except DevenvError as exc:
            state.setup_error = exc.message + (f"; {exc.hint}" if exc.hint else "")
    pool = Provisioned.pool
    if pool is not None and isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(
            POOL_MESSAGE, {"run_id": Provisioned.run_id, "project_id": pool.project_id, "tokens": pool.tokens}
        )
    if state.setup_error is not None:
        log.error("load test set-up failed: %s", state.setup_error)
        runner = environment.runner
        if runner is not None:
            stop = runner.quit if _opts(environment).headless else runner.stop
            gevent.spawn_later(0, stop)
        return
    _timeline_greenlet = gevent.spawn(_timeline, environment, state)


@events.test_stop.add_listener
def _test_stop(environment: Environment, **_: Any) -> None:
    state = current_run()
    if state is None or state.started_at is None:
        return
    state.ended_at = time.time()
    if _timeline_greenlet is not None:
        _timeline_greenlet.kill(block=False)
    runner = environment.runner
    if runner is None or runner.user_count == 0:
        _release_pool(environment)
    # else a master quitting a headless run: its workers still run their users (they are told to quit only
    # after this event), and revoking now would refuse their last requests; _quitting revokes instead
    try:
        _upload_results(environment, state)
    except Exception as exc:  # botocore's errors: said in the master's log, the run itself is done
        log.error("could not write the results to the bucket: %s", exc)


def _release_pool(environment: Environment) -> None:
    """Clean-up, not counted: the run's tokens stop working."""
    pool, Provisioned.pool = Provisioned.pool, None
    if pool is None:
        return
    try:
        provision.release(_management(environment), pool)
    except DevenvError as exc:
        log.warning("could not revoke the run's tokens: %s", exc.message)


def _summary(environment: Environment, state: RunState) -> dict[str, Any]:
    """The run's summary (summary.json), as `devenv loadtest` reports it."""
    methods = {entry.name: entry.method for entry in environment.stats.entries.values()}
    failures = [
        {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
        for e in sorted(environment.stats.errors.values(), key=lambda e: -e.occurrences)[:20]
    ]
    return build_summary(
        state,
        target=environment.host or "",
        mode="direct" if _opts(environment).api_key else "proxy",
        samples=_samples(environment),
        methods=methods,
        failures=failures,
    )


def _upload_results(environment: Environment, state: RunState) -> None:
    """The run's summary and timeline into the load generator stack's bucket (LOADTEST_RESULTS_BUCKET),
    under runs/<start time>/, where `devenv loadtest --on loadgen` collects them: the master of a stack
    run writes nothing a caller could read otherwise."""
    bucket = os.environ.get(RESULTS_BUCKET_ENV)
    if not bucket or isinstance(environment.runner, WorkerRunner) or state.started_at is None:
        return
    import boto3  # only a stack run needs it (the loadtest image installs it)

    prefix = f"{RESULTS_PREFIX}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(state.started_at))}/"
    s3 = boto3.client("s3")
    for name, body in ((SUMMARY_FILE, _summary(environment, state)), (TIMELINE_FILE, state.timeline)):
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=json.dumps(body).encode())
    log.info("results written to s3://%s/%s", bucket, prefix)


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    """Write the summary and set the exit code: 0 pass, 1 a threshold breached, 2 a set-up error."""
    state = current_run()
    if state is None:
        return
    _release_pool(environment)  # a headless master's: its workers were told to quit
    options = _opts(environment)
    summary = _summary(environment, state)
    if options.run_dir:
        run_dir = Path(options.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        (run_dir / TIMELINE_FILE).write_text(json.dumps(state.timeline))
    environment.process_exit_code = summary["exit_code"]


class LlmProxyUser(FastHttpUser):
    """One client of the proxy: a token of the run's pool and a mix of the proxy's traffic."""

    connection_timeout = 5.0
    network_timeout = 30.0

    def wait_time(self) -> float:
        return float(self.environment.parsed_options.think_time_ms) / 1000.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.sequence = itertools.count()
        self.user_id = uuid.uuid4().hex[:8]
        self.management: dict[str, str] | None = None
        self.project_id: str | None = None
        if options.api_key:
            self.auth = {"Authorization": f"Bearer {options.api_key}"}
            self.token_id = None
            return
        pool = Provisioned.pool
        if pool is None or not pool.tokens:
            raise StopUser()
        token = pool.tokens[next(Provisioned.next_token) % len(pool.tokens)]
        self.auth = {"Authorization": f"Bearer {token['token']}"}
        self.token_id = token.get("id")
        self.project_id = pool.project_id
        self.management = {"Authorization": f"Bearer {options.management_token}"}

    def _count_cache(self, name: str, response: Any) -> None:
        status = response.headers.get("x-proxy-cache") if response.headers else None
        if status:
            state = current_run()
            (state.cache if state is not None else WorkerTally.cache)[f"{name}: {status}"] += 1

    def _post(self, name: str, path: str, body: dict[str, Any], headers: dict[str, str], expect: str) -> None:
        with self.client.post(path, json=body, headers=headers, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_http_error(response))
                return
            try:
                document = response.json()
            except ValueError:
                response.failure("the answer is not JSON")
                return
            if expect not in document:
                response.failure(f"the answer has no {expect!r}")
                return
            self._count_cache(name, response)

    def _chat_body(self, prompt: str, **extra: Any) -> dict[str, Any]:
        model = self.environment.parsed_options.model
        return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 64, **extra}

    def _unique_prompt(self, kind: str) -> str:
        return f"[{kind} {Provisioned.run_id}-{self.user_id}-{next(self.sequence)}] Explain load testing briefly."

    @task(10)
    def chat_cache_miss(self) -> None:
        body = self._chat_body(self._unique_prompt("miss"))
        self._post(CHAT_MISS, "/v1/chat/completions", body, self._cacheable(), "choices")

    @task(6)
    def chat_cache_hit(self) -> None:
        prompt = CACHED_PROMPTS[next(self.sequence) % len(CACHED_PROMPTS)]
        self._post(CHAT_HIT, "/v1/chat/completions", self._chat_body(prompt), self._cacheable(), "choices")

    def _cacheable(self) -> dict[str, str]:
        """The proxy caches a POST only when the client opts in; misses opt in too (lookup, miss, store)."""
        return {
            **self.auth,
            "Cache-Control": f"public, max-age={self.environment.parsed_options.cache_max_age}",
        }

    @task(4)
    def chat_stream(self) -> None:
        body = self._chat_body(
            self._unique_prompt("stream"), stream=True, stream_options={"include_usage": True}
        )
        started = time.perf_counter()
        first_token_ms: float | None = None
        done = False
        with self.client.post(
            "/v1/chat/completions",
            json=body,
            headers=self.auth,
            name=CHAT_STREAM,
            stream=True,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(_http_error(response))
                return
            buffer = b""
            try:
                # geventhttpclient's read(n) returns once n bytes are buffered or the body ended: a large
                # n held the first token until the stream ended. 256 bytes (about one event) bounds the
                # first token's error at one inter-token gap.
                for chunk in response.iter_content(chunk_size=256, decode_content=False):
                    data_in = chunk if isinstance(chunk, bytes) else chunk.encode()
                    buffer = (buffer + data_in).replace(b"\r\n", b"\n")  # SSE allows CRLF line ends
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        data = event.partition(b"data:")[2].strip()
                        if data == b"[DONE]":
                            done = True
                        elif first_token_ms is None and data and _has_content(data):
                            first_token_ms = (time.perf_counter() - started) * 1000
            except Exception as exc:  # a connection cut mid-stream is a failed request, not a crash
                response.failure(f"stream broken: {type(exc).__name__}: {exc}")
                return
            response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            if not done:
                response.failure("the stream ended without data: [DONE]")
            elif first_token_ms is None:
                response.failure("the stream carried no content")
            else:
                response.success()
        if first_token_ms is not None:
            # Into its own row only: a `request` event would also add it to Locust's aggregated total
            # (its HTML, CSV and web UI), counting each stream twice.
            self.environment.stats.get(FIRST_TOKEN, "TTFT").log(first_token_ms, 0)

    @task(3)
    def embeddings(self) -> None:
        text = EMBEDDING_INPUTS[next(self.sequence) % len(EMBEDDING_INPUTS)]
        body = {"model": self.environment.parsed_options.embedding_model, "input": text}
        self._post(EMBEDDINGS, "/v1/embeddings", body, self.auth, "data")

    @task(2)
    def models(self) -> None:
        with self.client.get("/v1/models", headers=self.auth, name=MODELS, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_http_error(response))

    @task(1)
    def management_call(self) -> None:
        if self.management is None:  # direct mode: no management API
            return
        if next(self.sequence) % 2 and self.token_id:
            path, name = f"/manage/tokens/{self.token_id}", MANAGE_TOKEN
        else:
            path, name = f"/manage/projects/{self.project_id}", MANAGE_PROJECT
        with self.client.get(path, headers=self.management, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_http_error(response))


def _has_content(data: bytes) -> bool:
    try:
        document = json.loads(data)
    except ValueError:
        return False
    for choice in document.get("choices") or []:
        if (choice.get("delta") or {}).get("content") or choice.get("text"):
            return True
    return False


def _http_error(response: Any) -> str:
    """A failure message that groups well: the status and the error code, never the varying details."""
    if response.status_code == 0:
        return f"connection error: {type(response.error).__name__}"
    code = ""
    try:
        document = response.json()
        error = document.get("error") if isinstance(document, dict) else None
        code = str(document.get("code") or (error.get("code") if isinstance(error, dict) else error) or "")
    except Exception:
        code = ""
    return f"HTTP {response.status_code}" + (f" {code}" if code else "")
