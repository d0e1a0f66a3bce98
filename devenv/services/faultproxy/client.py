"""The Python client of a fault proxy's control API (what failover actions call)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from devenv.errors import NotRunningError, UsageError

# Everything here talks to 127.0.0.1: never through an HTTP proxy from the environment.
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status(control_url: str) -> dict[str, Any]:
    """The proxy's status: open and total connections, whether it listens, the current fault."""
    return _call(control_url, "GET", "/")


def cut(control_url: str) -> dict[str, Any]:
    """Close every open connection now (new ones pass); the status carries how many were `cut`."""
    return _call(control_url, "POST", "/faults", {"kind": "cut"})


def refuse(control_url: str, seconds: float) -> dict[str, Any]:
    """Refuse new connections (stop listening) for `seconds`; open connections stay."""
    return _call(control_url, "POST", "/faults", {"kind": "refuse", "duration_s": seconds})


def add_latency(control_url: str, ms: float, seconds: float | None = None) -> dict[str, Any]:
    """Delay every chunk by `ms` both ways, for `seconds` (None: until cleared)."""
    body: dict[str, Any] = {"kind": "latency", "latency_ms": ms}
    if seconds is not None:
        body["duration_s"] = seconds
    return _call(control_url, "POST", "/faults", body)


def clear(control_url: str) -> dict[str, Any]:
    """Clear the current fault: listen again, no latency."""
    return _call(control_url, "DELETE", "/faults")


def _call(control_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        control_url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with LOCAL_HTTP.open(request, timeout=5) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as exc:
        problem = json.load(exc)
        raise UsageError(
            f"fault proxy refused {method} {path}: {problem['error']}", problem.get("hint")
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NotRunningError(
            f"the fault proxy's control API at {control_url} does not answer ({exc})",
            "start it (devenv up) or check the control address",
        ) from exc
