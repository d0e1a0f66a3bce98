"""The mock upstream's option table: every flag has an environment variable, a parser, a default that
parses and a help text; a bad value, from a flag or from the environment, is an error naming it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from llmproxy.mock.latency import Latency
from llmproxy.mock.options import OPTIONS, MockOptions, Option, parse_options, parser_for

# One bad value per option: a new option without an entry here fails test_every_option_has_a_bad_value.
BAD_VALUES = {
    "host": " ",
    "port": "70000",
    "latency": "gauss:1",
    "ttft": "uniform:9:1",
    "inter_token_ms": "-1",
    "completion_tokens": "-1",
    "embedding_dim": "0",
    "error_rate_429": "1.5",
    "error_rate_500": "x",
    "timeout_rate": "-0.1",
    "hang_s": "inf",
    "expected_api_key": "",
    "models": " , ",
    "seed": "x",
}


def test_the_table_is_the_options() -> None:
    assert [o.name for o in OPTIONS] == [f.name for f in dataclasses.fields(MockOptions)]
    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
    for option in OPTIONS:
        assert option.env.startswith("MOCK_") and option.help.strip(), option
        if option.default is not None:
            option.parse(option.default)  # every default parses


def test_help_lists_every_flag_with_its_variable() -> None:
    text = parser_for({}).format_help()
    for option in OPTIONS:
        assert option.flag in text and option.env in text, option.name


def test_defaults_and_their_sources() -> None:
    defaults = parse_options([], {})
    assert (defaults.host, defaults.port, defaults.latency, defaults.ttft) == (
        "127.0.0.1",
        8081,
        Latency("fixed", 0.0),
        None,
    )
    from_listen_addr = parse_options([], {"LISTEN_ADDR": ":9000"})
    assert (from_listen_addr.host, from_listen_addr.port) == ("0.0.0.0", 9000)
    environ = {"LISTEN_ADDR": ":9000", "MOCK_UPSTREAM_PORT": "9001", "MOCK_TTFT": "lognormal:400:0.3"}
    from_env = parse_options([], environ)
    assert (from_env.port, from_env.ttft) == (9001, Latency("lognormal", 400.0, 0.3))
    from_flag = parse_options(["--port", "9002", "--models", "a, b"], environ)
    assert (from_flag.port, from_flag.models) == (9002, ("a", "b"))


def test_every_option_has_a_bad_value() -> None:
    assert set(BAD_VALUES) == {o.name for o in OPTIONS}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_a_bad_flag_value_names_the_flag(option: Option, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_options([option.flag, BAD_VALUES[option.name]], {})
    assert exited.value.code == 2
    assert f"argument {option.flag}: " in capsys.readouterr().err


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_a_bad_environment_value_names_the_variable(
    option: Option, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_options([], {option.env: BAD_VALUES[option.name]})
    assert exited.value.code == 2
    assert f"{option.env}={BAD_VALUES[option.name]!r} (for {option.flag}): " in capsys.readouterr().err


def test_rates_above_one_in_total_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_options(["--error-rate-429", "0.6"], {"MOCK_ERROR_RATE_500": "0.6"})
    assert "must not exceed 1" in capsys.readouterr().err


def test_the_process_reports_a_bad_variable_without_a_traceback() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "llmproxy", "mock-upstream"],
        env={"MOCK_INTER_TOKEN_MS": "soon", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "MOCK_INTER_TOKEN_MS='soon' (for --inter-token-ms): 'soon' is not a number" in bad.stderr
    assert "Traceback" not in bad.stderr
