"""The mock's error model: OpenAI-shaped error answers, and which requests get an injected failure
(forced by `X-Mock-Error`, or drawn against the configured rates)."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from llmproxy.mock.options import MockOptions

# Outcomes that are not a status code: the request hangs (then 504), or its answer stops halfway.
TIMEOUT = "timeout"
CUT = "cut"


class RequestError(Exception):
    """A request the fake refuses, answered as an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}
        )


def injected_outcome(forced: bytes | None, draw: Callable[[], float], options: MockOptions) -> str | None:
    """The failure this request gets: X-Mock-Error's value, else one picked by a draw against the
    configured rates; None: no failure."""
    if forced is not None:
        return forced.decode("latin-1").strip().lower()
    value = draw()
    if value < options.error_rate_429:
        return "429"
    if value < options.error_rate_429 + options.error_rate_500:
        return "500"
    if value < options.error_rate_429 + options.error_rate_500 + options.timeout_rate:
        return TIMEOUT
    return None


def timed_out() -> RequestError:
    return RequestError(504, "the mock upstream timed out on purpose", "timeout", "server_error")


def status_error(outcome: str) -> RequestError:
    """The injected error of a status outcome ('429', '503', ...); raises 400 for anything else."""
    if not outcome.isdigit() or not 400 <= int(outcome) <= 599:
        raise RequestError(
            400,
            f"X-Mock-Error must be a 4xx/5xx status, '{TIMEOUT}' or '{CUT}', got {outcome!r}",
            "bad_mock_header",
        )
    status = int(outcome)
    if status == 429:
        return RequestError(
            429, "Rate limit reached (injected by the mock upstream).", "rate_limit_exceeded", "requests"
        )
    return RequestError(status, f"injected {status} from the mock upstream", "injected_error", "server_error")
