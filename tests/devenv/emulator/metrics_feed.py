"""Feeding metrics to an emulator as a publisher does: real timestamps, several datapoints a period."""

from __future__ import annotations

import threading
from typing import Any


class Feeder:
    """Puts metrics' datapoints at real timestamps, several per (compressed) period, from a thread;
    `values` maps metric names to the value to put (all in one PutMetricData call)."""

    def __init__(
        self, cloudwatch: Any, namespace: str, dimensions: list[dict[str, str]], unit: str = "None"
    ) -> None:
        self.cloudwatch, self.namespace, self.dimensions, self.unit = cloudwatch, namespace, dimensions, unit
        self.values: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            data = [
                {"MetricName": name, "Value": value, "Dimensions": self.dimensions, "Unit": self.unit}
                for name, value in dict(self.values).items()
            ]
            if data:
                self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
