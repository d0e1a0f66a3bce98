"""The stack's settings store: errors a user can act on before any call leaves the machine (the calls
themselves run against a real emulator in tests/stack/test_stack_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.config import load_settings
from devenv.errors import ConfigError, UsageError
from devenv.targets.endpoints import Target
from devenv.targets.stack_settings import PARAMETER_CHECKS, open_store, parameter_name, secret_name


def test_aws_without_a_region_is_a_config_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with pytest.raises(ConfigError, match="no AWS region configured"):
        open_store(load_settings(overrides={"state_dir": tmp_path}), Target.aws)


def test_names_take_the_short_or_the_full_form() -> None:
    assert secret_name("management-token") == secret_name(secret_name("management-token"))
    assert parameter_name("log-level") == parameter_name(parameter_name("log-level")[1])
    with pytest.raises(UsageError, match="unknown config name 'colour'") as unknown:
        parameter_name("colour")
    assert unknown.value.hint is not None and "log-level" in unknown.value.hint


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("log-level", "DEBUG", "loud"),
        ("cache-enabled", "false", "yes"),
        ("rate-limit-rpm", "0", "-1"),
        ("redis-url", "rediss://cache:6379/0", "http://cache"),
        ("upstream-url", "https://api.openai.com", "api.openai.com"),
    ],
)
def test_each_parameter_accepts_what_the_app_reads(key: str, good: str, bad: str) -> None:
    assert PARAMETER_CHECKS[key](good) is None
    assert PARAMETER_CHECKS[key](bad)
