"""CloudWatch metrics of the realized stack, published into the local cloud as AWS's services publish them.

A collector thread samples the running stack every `sample_interval_s` (a few seconds; shorter when
`time_scale` compresses CloudWatch periods, so a compressed minute still holds several samples) and a
publisher thread sends each sample through the real CloudWatch API (`PutMetricData`), one datapoint per
metric per sample at the sample's real time, so `GetMetricStatistics` over a minute gives AWS's Sum,
Average, Minimum and Maximum. What is sampled, and how each metric approximates AWS's, is the sources'
business: `alb_metrics` (AWS/ApplicationELB, at the ALB mirror), `ecs_metrics` (AWS/ECS, from the task
processes), `datastore_metrics` (AWS/RDS from Postgres, AWS/ElastiCache from Redis).

Publishing never holds up sampling or the realizer: samples wait in a bounded buffer while the emulator
is slow or restarting (the oldest are dropped when it is full), and each such episode is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

log = logging.getLogger("devenv.metrics")

MAX_INTERVAL_S = 5.0
MIN_INTERVAL_S = 0.5
SAMPLES_PER_PERIOD = 4  # at least this many samples in a (compressed) one-minute period
MAX_BUFFERED_CALLS = 2000  # calls waiting for the emulator: 500 samples of 4 namespaces (~40 min at 5 s)
MAX_DATUMS_PER_CALL = 1000  # PutMetricData's limit
MAX_VALUES_PER_DATUM = 150  # PutMetricData's limit of distinct Values in one datum
VALUE_DIGITS = 4  # a distribution's resolution: 0.1 ms for seconds
RETRY_S = 1.0


def sample_interval_s(time_scale: float) -> float:
    """Seconds between two samples: 5 s at AWS's timing, shorter as `time_scale` shortens a period
    (60 s / time_scale / 4), never under 0.5 s."""
    return max(MIN_INTERVAL_S, min(MAX_INTERVAL_S, 60.0 / time_scale / SAMPLES_PER_PERIOD))


@dataclass(frozen=True)
class StatisticSet:
    """Several observations in one datapoint (PutMetricData's StatisticValues)."""

    count: int
    total: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Iterable[float]) -> StatisticSet | None:
        """The set of `values`, or None when there are none (nothing to publish)."""
        values = list(values)
        if not values:
            return None
        return cls(len(values), sum(values), min(values), max(values))


@dataclass(frozen=True)
class Distribution:
    """Observations as distinct values with their counts (PutMetricData's Values and Counts), so that
    CloudWatch can compute percentiles, which a statistic set hides (the dashboard's p50 and p99)."""

    counts: tuple[tuple[float, int], ...]  # (value, how many times), values ascending

    @classmethod
    def of(cls, values: Iterable[float]) -> list[Distribution]:
        """`values` rounded to VALUE_DIGITS decimals, in datums of at most MAX_VALUES_PER_DATUM distinct
        values (PutMetricData's limit); none when there are no values."""
        tally: dict[float, int] = {}
        for value in values:
            rounded = round(value, VALUE_DIGITS)
            tally[rounded] = tally.get(rounded, 0) + 1
        pairs = sorted(tally.items())
        return [
            cls(tuple(pairs[i : i + MAX_VALUES_PER_DATUM]))
            for i in range(0, len(pairs), MAX_VALUES_PER_DATUM)
        ]


Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Datum:
    """One datapoint of one metric (namespace, name, dimensions), with AWS's unit."""

    namespace: str
    name: str
    dimensions: Dimensions
    unit: str
    value: float | StatisticSet | Distribution

    def api(self, timestamp: datetime) -> dict[str, Any]:
        """This datum as an item of PutMetricData's MetricData."""
        item: dict[str, Any] = {
            "MetricName": self.name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
            "Timestamp": timestamp,
            "Unit": self.unit,
        }
        if isinstance(self.value, StatisticSet):
            item["StatisticValues"] = {
                "SampleCount": float(self.value.count),
                "Sum": self.value.total,
                "Minimum": self.value.minimum,
                "Maximum": self.value.maximum,
            }
        elif isinstance(self.value, Distribution):
            item["Values"] = [value for value, _ in self.value.counts]
            item["Counts"] = [float(count) for _, count in self.value.counts]
        else:
            item["Value"] = float(self.value)
        return item


# A source of metrics: the datapoints of one sample (a source keeps what it needs of the previous one).
Source = Callable[[], list[Datum]]


@dataclass(frozen=True)
class Call:
    """One PutMetricData call: a namespace, at most MAX_DATUMS_PER_CALL datapoints, one timestamp."""

    namespace: str
    items: tuple[dict[str, Any], ...]


def calls(datums: list[Datum], timestamp: datetime) -> list[Call]:
    """The PutMetricData calls that publish `datums` (one namespace per call, within its size limit)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for datum in datums:
        by_namespace.setdefault(datum.namespace, []).append(datum.api(timestamp))
    return [
        Call(namespace, tuple(items[i : i + MAX_DATUMS_PER_CALL]))
        for namespace, items in by_namespace.items()
        for i in range(0, len(items), MAX_DATUMS_PER_CALL)
    ]


class Publisher:
    """Sends calls to CloudWatch from its own thread, in order; buffers a bounded number while the
    emulator does not answer (dropping the oldest beyond that) and logs each outage once."""

    def __init__(self, cloudwatch: Any, capacity: int = MAX_BUFFERED_CALLS) -> None:
        self.cloudwatch = cloudwatch
        self.published = 0
        self.dropped = 0
        self._pending: deque[Call] = deque()
        self._capacity = capacity
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._failing: str | None = None
        self._thread = threading.Thread(target=self._run, name="metrics-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._ready:
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join()

    def submit(self, batch: list[Call]) -> None:
        """Queue calls; returns at once."""
        with self._ready:
            for call in batch:
                if len(self._pending) >= self._capacity:
                    self._pending.popleft()
                    self.dropped += 1
                self._pending.append(call)
            self._ready.notify()

    def pending(self) -> int:
        return len(self._pending)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._ready:
                while not self._pending and not self._stop.is_set():
                    self._ready.wait()
                if self._stop.is_set():
                    return
                call = self._pending[0]
            if self._send(call):
                with self._ready:
                    if self._pending and self._pending[0] is call:
                        self._pending.popleft()
            else:
                self._stop.wait(RETRY_S)

    def _send(self, call: Call) -> bool:
        """Whether the call is done with (published, or refused for good); False: try it again later."""
        try:
            self.cloudwatch.put_metric_data(Namespace=call.namespace, MetricData=list(call.items))
        except botocore.exceptions.ClientError as exc:  # the emulator refused the data: never better later
            self.dropped += 1
            log.warning("metrics: CloudWatch refused %s datapoints: %s", call.namespace, exc)
            return True
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            if self._failing is None:
                log.warning(
                    "metrics: the local cloud does not take metrics (%s); keeping up to %d calls until it "
                    "does, the oldest dropped beyond that",
                    exc,
                    self._capacity,
                )
            self._failing = str(exc)
            return False
        if self._failing is not None:
            log.warning("metrics: publishing again (%d calls dropped so far)", self.dropped)
            self._failing = None
        self.published += 1
        return True


class MetricsCollector:
    """Samples every source each interval and hands the datapoints to the publisher; `start` it once
    the stack is realized, `stop` it on the way down."""

    def __init__(self, sources: dict[str, Source], publisher: Publisher, interval_s: float) -> None:
        self.sources = sources
        self.publisher = publisher
        self.interval_s = interval_s
        self.samples = 0
        self._failing: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-collector", daemon=True)

    def start(self) -> None:
        self.publisher.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.publisher.stop()

    def sample(self) -> list[Datum]:
        """One sample of every source, submitted for publishing; returns its datapoints."""
        timestamp = datetime.now(UTC)
        datums: list[Datum] = []
        for name, source in self.sources.items():
            try:
                datums += source()
            except Exception as exc:  # one source failing (a restarting Redis) must not stop the others
                if self._failing.get(name) != str(exc):
                    log.warning("metrics: no %s metrics this time: %s", name, exc)
                self._failing[name] = str(exc)
            else:
                if self._failing.pop(name, None) is not None:
                    log.warning("metrics: %s metrics are back", name)
        self.publisher.submit(calls(datums, timestamp))
        self.samples += 1
        return datums

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - self.interval_s)  # after a stall, no burst of samples
