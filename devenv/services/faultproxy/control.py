"""The fault proxy's control API: JSON over HTTP, served by the standard library's HTTP server.

http.server parses the requests (in a thread of its own); every request is answered on the relay's event
loop (`answer`), so the relay's state is only ever touched from that loop. One request per connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devenv.services.faultproxy.relay import Fault, FaultProxy

FAULT_KINDS = ("cut", "refuse", "latency")
FAULT_HINT = (
    'send {"kind": "cut"}, {"kind": "refuse", "duration_s": 5} or '
    '{"kind": "latency", "latency_ms": 100, "duration_s": 10} (duration_s optional for latency)'
)
HTTP_HINT = "use an HTTP/1.1 client"
# How often the HTTP server's thread looks for a stop request: the most a shutdown waits for it.
STOP_POLL_S = 0.1


class BadFault(ValueError):
    """A control request the proxy cannot act on; `hint` says what a valid one looks like."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def parse_fault(body: Any) -> Fault | None:
    """The fault a POST /faults body asks for; None for `cut` (an action, not a state)."""
    if not isinstance(body, dict):
        raise BadFault("the body must be a JSON object", FAULT_HINT)
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise BadFault(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}", FAULT_HINT)
    allowed = {
        "cut": {"kind"},
        "refuse": {"kind", "duration_s"},
        "latency": {"kind", "latency_ms", "duration_s"},
    }
    unknown = sorted(set(body) - allowed[kind])
    if unknown:
        raise BadFault(f"unexpected field(s) for {kind}: {', '.join(unknown)}", FAULT_HINT)
    if kind == "cut":
        return None
    duration = body.get("duration_s")
    if kind == "refuse" and duration is None:
        raise BadFault("refuse needs duration_s (seconds to refuse new connections)", FAULT_HINT)
    if duration is not None and not _positive_number(duration):
        raise BadFault(f"duration_s must be a number > 0, got {duration!r}", FAULT_HINT)
    expires_at = None if duration is None else time.monotonic() + float(duration)
    if kind == "refuse":
        return Fault("refuse", expires_at=expires_at)
    latency = body.get("latency_ms")
    if latency is None or not (_positive_number(latency) or latency == 0):
        raise BadFault(f"latency needs latency_ms, a number >= 0, got {latency!r}", FAULT_HINT)
    return Fault("latency", latency_ms=float(latency), expires_at=expires_at)


def _positive_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


async def answer(proxy: FaultProxy, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON payload for one control request."""
    path = path.split("?", 1)[0]
    if path == "/" and method == "GET":
        return 200, proxy.status()
    if path != "/faults":
        return 404, {"error": f"no such resource {path}", "hint": "use GET /, POST /faults or DELETE /faults"}
    if method == "DELETE":
        await proxy.set_fault(None)
        return 200, proxy.status()
    if method != "POST":
        return 405, {"error": f"{method} /faults is not supported", "hint": "use POST or DELETE /faults"}
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        return 400, {"error": f"the body is not valid JSON: {exc}", "hint": FAULT_HINT}
    try:
        fault = parse_fault(body)
    except BadFault as exc:
        return 400, {"error": str(exc), "hint": exc.hint}
    if fault is None:
        cut = proxy.cut()
        return 200, {**proxy.status(), "cut": cut}
    await proxy.set_fault(fault)
    return 200, proxy.status()


class ControlServer(ThreadingHTTPServer):
    """The control API of one relay, listening from construction; `start` serves it from a thread."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], proxy: FaultProxy, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(address, _Handler)
        self.proxy = proxy
        self.loop = loop

    def start(self) -> None:
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": STOP_POLL_S}, name="control", daemon=True
        )
        thread.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.shutdown)  # waits for serve_forever to return
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer is not the proxy's error: no traceback for it."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # http.server's default is 1.0
    server: ControlServer

    def _serve(self) -> None:
        length = self.headers.get("Content-Length", "0") or "0"
        if not length.isdigit():
            self._reply(
                400, {"error": f"malformed HTTP request: Content-Length {length!r}", "hint": HTTP_HINT}
            )
            return
        raw = self.rfile.read(int(length)) if int(length) else b""
        request = answer(self.server.proxy, self.command, self.path, raw)
        status, payload = asyncio.run_coroutine_threadsafe(request, self.server.loop).result()
        self._reply(status, payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a bad request line or header, an unknown method) as JSON, not HTML."""
        self.request_version = self.protocol_version  # a garbled request line still gets a status line
        self._reply(
            code, {"error": f"malformed HTTP request: {message or explain or code}", "hint": HTTP_HINT}
        )

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the proxy's log holds its start line and errors, not one line per control request."""
