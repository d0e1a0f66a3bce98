"""A failover experiment as data: steady-state hypothesis, background load, set-up, method, rollbacks, criteria.

Experiments live as YAML in `failover/` of the load tests folder (the `loadtests_dir` setting; one file
each, named after the experiment). Loading one
validates every key up front (a bad file is an ExperimentError naming the file and the key, before anything
is injected). `loadtests/failover/schema.json` is this model's JSON Schema (`python -m devenv.failover.schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devenv.failover.actions import ACTIONS, validate_args

RESERVED_NAMES = ("list",)


class ExperimentError(ValueError):
    """An experiment file that cannot be run as written; the message names the file and the key."""


class NoSuchExperiment(ExperimentError):
    """No file for the experiment named (a typo, or the wrong folder): nothing to fix inside a file."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Load(Strict):
    """The background load: `rate` /v1 requests per second for `duration_s`, the fault injected at `inject_at_s`."""

    rate: Annotated[float, Field(gt=0, le=200, description="requests per second (bounded)")] = 20
    duration_s: Annotated[float, Field(gt=0, le=600, description="total length of the background load")] = 40
    inject_at_s: Annotated[
        float, Field(gt=0, description="seconds of steady load before the method starts (the baseline)")
    ] = 8
    concurrency: Annotated[int, Field(ge=1, le=64, description="requests in flight at most")] = 16
    timeout_s: Annotated[float, Field(gt=0, le=60, description="a request slower than this has failed")] = 10
    path: str = Field(default="/v1/chat/completions", pattern=r"^/v1/", description="the /v1 route to call")
    keep_alive: bool = Field(
        default=True,
        description="reuse connections, as real clients do (false: a new connection per request)",
    )

    @model_validator(mode="after")
    def _injection_inside_the_load(self) -> Load:
        if self.inject_at_s >= self.duration_s:
            raise ValueError(
                f"inject_at_s ({self.inject_at_s}) must be less than duration_s ({self.duration_s})"
            )
        return self


class Health(Strict):
    """The health probe: GET `path` answers one of `statuses` with a body `status` in `body_statuses`."""

    path: str = Field(default="/health", pattern=r"^/")
    statuses: list[int] = Field(default_factory=lambda: [200], min_length=1)
    body_statuses: list[str] = Field(
        default_factory=lambda: ["ok"], description="accepted values of the body's `status`"
    )
    interval_s: Annotated[float, Field(ge=0.05, le=5)] = 0.25


class Hypothesis(Strict):
    """The steady state: health holds, and the background load's error rate and p99 stay within tolerances."""

    health: Health = Field(default_factory=lambda: Health())
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p99_ms: Annotated[float, Field(gt=0)] = 2000
    settle_timeout_s: Annotated[
        float,
        Field(
            ge=0,
            le=600,
            description="how long to wait for the health probe to hold before the load starts (a previous "
            "fault may still be settling); past it the run aborts with nothing injected",
        ),
    ] = 60
    settle_hold_s: Annotated[
        float,
        Field(
            ge=0,
            le=60,
            description="how long the health probe must hold without a break before the load starts",
        ),
    ] = 2

    @model_validator(mode="after")
    def _hold_fits_the_wait(self) -> Hypothesis:
        if self.settle_hold_s > self.settle_timeout_s:
            raise ValueError(
                f"settle_hold_s ({self.settle_hold_s:g}) is longer than settle_timeout_s "
                f"({self.settle_timeout_s:g}): the steady state could never be reached; raise settle_timeout_s"
            )
        return self


AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class AlarmCriterion(Strict):
    """A CloudWatch alarm of the stack, checked from its state history (DescribeAlarmHistory) over the run:
    `never` a state from the injection to the end, `reaches` a state at some moment after the injection
    (the fault was seen), or `back_to` a state `within_s` of the injection. `within_s` is in CloudWatch's
    time: divided by the target's time_scale, so one file means the same on AWS and on a compressed local
    cloud."""

    name_contains: str = Field(
        min_length=1, description="the alarm(s) whose name holds this, e.g. UnhealthyHosts"
    )
    never: AlarmState | None = Field(None, description="a state the alarm must not be in after the injection")
    reaches: AlarmState | None = Field(
        None, description="a state the alarm must enter after the injection, before the run ends"
    )
    back_to: AlarmState | None = Field(None, description="the state the alarm must be in `within_s` after it")
    within_s: Annotated[float | None, Field(gt=0, le=3600, description="AWS seconds after the injection")] = (
        None
    )

    @model_validator(mode="after")
    def _one_check(self) -> AlarmCriterion:
        if sum(state is not None for state in (self.never, self.reaches, self.back_to)) != 1:
            raise ValueError("give exactly one of never, reaches or back_to")
        if (self.back_to is None) != (self.within_s is None):
            raise ValueError("back_to needs within_s (and within_s needs back_to)")
        return self


class Criteria(Strict):
    """The experiment's pass criteria (its reliability goals); an absent key is not checked."""

    max_failed_requests: Annotated[int | None, Field(ge=0)] = None
    max_failure_rate: Annotated[float | None, Field(ge=0, le=1)] = None
    max_recovery_s: Annotated[float | None, Field(ge=0)] = None
    max_lost_events: Annotated[int | None, Field(ge=0)] = None
    max_duplicate_events: Annotated[int | None, Field(ge=0)] = None
    max_p99_ms_during: Annotated[float | None, Field(gt=0)] = None
    max_p99_ms_after: Annotated[float | None, Field(gt=0)] = None
    alarms: list[AlarmCriterion] = Field(default_factory=list, description="alarm states to hold")


class Audit(Strict):
    """The data-loss check: how long to wait for the dispatcher to catch up (set false to skip it)."""

    enabled: bool = True
    catch_up_timeout_s: Annotated[float, Field(gt=0, le=600)] = 60


class Step(BaseModel):
    """One action and its arguments, e.g. `{action: ecs.stop_task, service: proxy}`."""

    model_config = ConfigDict(extra="allow")

    action: Literal[tuple(ACTIONS)]  # type: ignore[valid-type]

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _arguments(self) -> Step:
        validate_args(self.action, self.args)
        return self


class Experiment(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    hypothesis: Hypothesis = Field(default_factory=Hypothesis)
    load: Load = Field(default_factory=lambda: Load())
    setup: list[Step] = Field(default_factory=list, description="before the steady-state check; rolled back")
    method: list[Step] = Field(min_length=1, description="the fault: actions and waits")
    rollbacks: list[Step] = Field(default_factory=list, description="always run at the end, in order")
    criteria: Criteria = Field(default_factory=Criteria)
    audit: Audit = Field(default_factory=Audit)

    @model_validator(mode="after")
    def _not_reserved(self) -> Experiment:
        if self.name in RESERVED_NAMES:
            raise ValueError(f"{self.name!r} is a command of `devenv failover`, not an experiment name")
        return self


def load_file(path: Path) -> Experiment:
    """The experiment in `path`, validated; ExperimentError names the file and the offending key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: an experiment is a mapping (name, hypothesis, load, method, ...)")
    try:
        experiment = Experiment.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_key(err['loc'])}: {err['msg']}" + (f" (got {err['input']!r})" if _short(err) else "")
            for err in exc.errors()
        )
        raise ExperimentError(f"{path}: {problems}") from None
    if experiment.name != path.stem:
        raise ExperimentError(f"{path}: name: {experiment.name!r} must match the file name {path.stem!r}")
    return experiment


def _key(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif not str(part).startswith(("function-after", "literal[")):
            key += ("." if key else "") + str(part)
    return key or "(top level)"


def _short(err: Any) -> bool:
    return isinstance(err.get("input"), str | int | float) and len(repr(err["input"])) < 60


def with_overrides(experiment: Experiment, duration_s: float | None, overrides: list[str]) -> Experiment:
    """The experiment with a shorter or longer load (the injection kept in its first third at most) and
    criteria or tolerances replaced (`KEY=VALUE`, e.g. `max_failure_rate=0.05`, `max_p99_ms=3000`)."""
    data = experiment.model_dump(exclude_none=True)
    if duration_s is not None:
        inject = min(data["load"]["inject_at_s"], duration_s / 3)
        data["load"].update(duration_s=duration_s, inject_at_s=round(inject, 2))
    tunable = {
        **dict.fromkeys((k for k in Criteria.model_fields if k != "alarms"), "criteria"),
        "max_error_rate": "hypothesis",
        "max_p99_ms": "hypothesis",
    }
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in tunable:
            raise ExperimentError(
                f"--tolerance {item!r}: expected KEY=VALUE with KEY one of {', '.join(tunable)}"
            )
        data[tunable[key]][key] = value
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_key(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ExperimentError(f"{experiment.name} with the overrides: {problems}") from None


def experiments_dir(loadtests_dir: Path) -> Path:
    """Where the experiment files are, in the load tests folder."""
    return loadtests_dir / "failover"


def discover(directory: Path) -> dict[str, Path]:
    """Experiment files by name (`*.yaml` in the directory)."""
    return {p.stem: p for p in sorted(directory.glob("*.yaml"))}


def find(name: str, directory: Path) -> Experiment:
    files = discover(directory)
    if name not in files:
        known = ", ".join(files) or "none"
        raise NoSuchExperiment(f"no experiment {name!r} in {directory} (known: {known})")
    return load_file(files[name])
