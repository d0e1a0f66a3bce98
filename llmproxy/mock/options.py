"""The mock upstream's options: one table, each row a flag, its MOCK_* environment variable, its parser,
its default and its help, so that none of them is written twice.

A value comes from the flag, else the environment variable, else (host and port only) `LISTEN_ADDR`, as
the proxy reads it when the image runs as an ECS task, else the default. A bad value from anywhere stops
the process with exit 2 and a message naming the flag or variable it came from.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from llmproxy.mock.latency import Latency

DEFAULT_MODELS = "gpt-4o-mini,gpt-4o,gpt-4.1-mini,text-embedding-3-small,text-embedding-3-large"


def non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{text!r} is not a port number (0-65535; 0 picks a free port)")
    return int(text)


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{text!r} must be >= 0")
    return value


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is not between 0 and 1")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def integer_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = integer(text)
        if high is not None and not low <= value <= high:
            raise ValueError(f"{value} is not between {low} and {high}")
        if value < low:
            raise ValueError(f"{value} is not >= {low}")
        return value

    return parse


def model_ids(text: str) -> tuple[str, ...]:
    ids = tuple(m.strip() for m in text.split(",") if m.strip())
    if not ids:
        raise ValueError("name at least one model id (comma-separated)")
    return ids


@dataclass(frozen=True)
class Option:
    """One setting of the mock: `--name-with-dashes` on the command line, `env` in the environment."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: str | None  # text, parsed like a value given on the command line; None: unset
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("host", "MOCK_UPSTREAM_HOST", non_empty, "127.0.0.1", "address to bind (else LISTEN_ADDR's host)"),
    Option(
        "port",
        "MOCK_UPSTREAM_PORT",
        port_number,
        "8081",
        "port; 0 picks a free one (else LISTEN_ADDR's port)",
    ),
    Option(
        "latency",
        "MOCK_LATENCY",
        Latency.parse,
        "0",
        "response time (ms) of answers generated at once: embeddings, model listings, injected errors; "
        "also a completion's time to first token unless --ttft is set",
    ),
    Option(
        "ttft",
        "MOCK_TTFT",
        Latency.parse,
        None,
        "time to first token (ms) of a completion, streamed or not; unset: the --latency draw",
    ),
    Option(
        "inter_token_ms",
        "MOCK_INTER_TOKEN_MS",
        non_negative,
        "0",
        "generation time per further token: the gap between stream chunks; a completion that is not "
        "streamed arrives when its stream would have ended",
    ),
    Option(
        "completion_tokens",
        "MOCK_COMPLETION_TOKENS",
        integer_in(0),
        "16",
        "completion tokens per answer unless max_tokens is lower",
    ),
    Option(
        "embedding_dim",
        "MOCK_EMBEDDING_DIM",
        integer_in(1, 4096),
        "64",
        "embedding size unless the request sets `dimensions`",
    ),
    Option("error_rate_429", "MOCK_ERROR_RATE_429", rate, "0", "share of /v1 requests answered 429"),
    Option("error_rate_500", "MOCK_ERROR_RATE_500", rate, "0", "share of /v1 requests answered 500"),
    Option(
        "timeout_rate", "MOCK_TIMEOUT_RATE", rate, "0", "share of /v1 requests held until --hang-s, then 504"
    ),
    Option("hang_s", "MOCK_HANG_S", non_negative, "30", "how long an injected timeout holds the request"),
    Option(
        "expected_api_key",
        "MOCK_EXPECTED_API_KEY",
        non_empty,
        None,
        "answer 401 unless Authorization is 'Bearer KEY'",
    ),
    Option("models", "MOCK_MODELS", model_ids, DEFAULT_MODELS, "comma-separated model ids of /v1/models"),
    Option("seed", "MOCK_SEED", integer, None, "seed of the latency and error draws (unset: random)"),
)


@dataclass(frozen=True)
class MockOptions:
    """How the fake upstream behaves: one field per row of OPTIONS."""

    host: str
    port: int
    latency: Latency
    ttft: Latency | None
    inter_token_ms: float
    completion_tokens: int
    embedding_dim: int
    error_rate_429: float
    error_rate_500: float
    timeout_rate: float
    hang_s: float
    expected_api_key: str | None
    models: tuple[str, ...]
    seed: int | None


def listen_addr_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """Host and port from LISTEN_ADDR, as the proxy reads it (`:8080` means every interface)."""
    listen = environ.get("LISTEN_ADDR", "")
    if not listen:
        return {}
    host, _, port = listen.rpartition(":")
    return {"host": host or "0.0.0.0", **({"port": port} if port else {})}


def argument_type(option: Option) -> Callable[[str], Any]:
    """The row's parser as an argparse type: its message is shown after the flag's name."""

    def convert(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def parser_for(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser, its defaults taken from the environment (a bad one is reported at once)."""
    parser = argparse.ArgumentParser(
        prog="python -m llmproxy mock-upstream",
        description="An OpenAI-compatible fake upstream. Latency specs (milliseconds): 50, fixed:50, "
        "uniform:LO:HI, normal:MEAN:SD, exponential:MEAN, lognormal:MEDIAN:SIGMA.",
    )
    for option in OPTIONS:
        shown = "unset" if option.default is None else option.default
        parser.add_argument(
            option.flag,
            type=argument_type(option),
            metavar=option.name.upper(),
            help=f"{option.help} (env {option.env}; default {shown})".replace("%", "%%"),
        )
    listen = listen_addr_defaults(environ)
    defaults: dict[str, Any] = {}
    for option in OPTIONS:
        raw, source = option.default, "the default"
        if option.name in listen:
            raw, source = listen[option.name], f"LISTEN_ADDR={environ['LISTEN_ADDR']!r}"
        if option.env in environ:
            raw, source = environ[option.env], f"{option.env}={environ[option.env]!r}"
        try:
            defaults[option.name] = None if raw is None else option.parse(raw)
        except ValueError as exc:
            parser.error(f"{source} (for {option.flag}): {exc}")
    parser.set_defaults(**defaults)
    return parser


def parse_options(argv: list[str], environ: Mapping[str, str] | None = None) -> MockOptions:
    """Flags over MOCK_* variables over defaults; exits 2 with usage and the problem on a bad value."""
    parser = parser_for(os.environ if environ is None else environ)
    values = vars(parser.parse_args(argv))
    options = MockOptions(**{f.name: values[f.name] for f in fields(MockOptions)})
    if options.error_rate_429 + options.error_rate_500 + options.timeout_rate > 1.0:
        parser.error("--error-rate-429 + --error-rate-500 + --timeout-rate must not exceed 1")
    return options
