"""The load shape of a profile (smoke, step, spike, soak, ramp); load it beside the locustfile:

    locust -f loadtests/locustfile.py,loadtests/shapes.py --load-profile step ...

Step, spike and ramp report each stage on that stage's own requests (the summary's `stages`); the ramp
also stops at the first threshold breach, and the summary then says at which users and RPS it broke and
what the best passing step reached.
"""

from __future__ import annotations

from locust import LoadTestShape

from devenv.loadtest.figures import Sample
from devenv.loadtest.profiles import RAMP_STEP_S, Stage, parse_duration, plan
from devenv.loadtest.summary import current_run

STAGED = ("step", "spike", "ramp")  # profiles whose stages are each reported on their own requests


class ProfileShape(LoadTestShape):
    """Users over time from `--load-profile`, `--load-users` and `--load-duration`."""

    def __init__(self) -> None:
        super().__init__()
        self.profile = "smoke"
        self.reset_time()

    def reset_time(self) -> None:
        """A run starts (Locust calls this at its start): plan it afresh from the options, which a master's
        web API may have changed with the swarm, on the statistics of this run only."""
        super().reset_time()
        self.stages: list[Stage] | None = None
        self.index = -1
        self.snapshot: dict[str, Sample] = {}
        self.step_started = 0.0

    def _plan(self) -> list[Stage]:
        options = self.runner.environment.parsed_options if self.runner else None
        self.profile = (options.load_profile if options else "") or "smoke"
        users = (options.load_users if options else 0) or None
        duration = parse_duration(options.load_duration) if options and options.load_duration else None
        step = parse_duration(options.load_step) if options and options.load_step else RAMP_STEP_S
        return plan(self.profile, users, duration, step)

    def tick(self) -> tuple[int, float] | None:
        state = current_run()
        if state is None:
            return None
        # a set-up error stops the run it belongs to; one left from a master's previous run does not
        if state.setup_error is not None and (state.started_at is None or state.ended_at is None):
            return None
        if self.stages is None:
            try:
                self.stages = self._plan()
            except ValueError as exc:
                state.setup_error = str(exc)
                return None
        run_time = self.get_run_time()
        index = next((i for i, s in enumerate(self.stages) if run_time < s.end_s), len(self.stages))
        if self.profile in STAGED and index != self.index:
            now = state.samples()
            if self.index >= 0:
                finished = self.stages[self.index]
                figures = state.window_figures(now, self.snapshot, run_time - self.step_started)
                held = state.judge_stage(finished.label, finished.users, figures, round(run_time, 2))
                if not held and self.profile == "ramp":
                    return None
            self.snapshot, self.step_started = now, run_time
        self.index = index
        if index >= len(self.stages):
            return None
        stage = self.stages[index]
        return stage.users, stage.spawn_rate
