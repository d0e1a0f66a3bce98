"""Settings: defaults < config file < DEVENV_* < flags, and every mistake named with its source and fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devenv.config import OTHER_VARIABLES, Settings, load_settings
from devenv.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parents[2]


def test_layers_override_in_order(tmp_path: Path) -> None:
    (tmp_path / "devenv.toml").write_text("alb_port = 9000\nredis_port = 7000\nregion = 'eu-west-1'\n")
    settings = load_settings(
        tmp_path, {"DEVENV_REDIS_PORT": "7001", "DEVENV_REGION": "eu-central-1"}, {"region": "us-west-2"}
    )
    assert (settings.alb_port, settings.redis_port, settings.region) == (9000, 7001, "us-west-2")
    assert settings.state_dir == (tmp_path / ".devenv").resolve()


def test_a_misspelt_variable_names_the_closest_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, {"DEVENV_ALB_PROT": "9000"})
    assert "DEVENV_ALB_PROT" in info.value.message
    assert info.value.hint is not None and "DEVENV_ALB_PORT" in info.value.hint


def test_variables_that_are_not_settings_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, dict.fromkeys(OTHER_VARIABLES, "x"))
    assert settings == load_settings(tmp_path, {})


def test_every_devenv_variable_in_the_code_is_a_setting_or_listed() -> None:
    """A new DEVENV_* variable must be a setting or be added to OTHER_VARIABLES (else it would be refused)."""
    settings = {f"DEVENV_{name.upper()}" for name in Settings.model_fields}
    found: dict[str, str] = {}
    for folder in ("devenv", "llmproxy", "loadtests", "compose", "benchmarks", "stack"):
        for path in (REPOSITORY / folder).rglob("*"):
            if path.suffix in (".py", ".yaml", ".yml", ".sh", ".md", "") and path.is_file():
                for name in re.findall(r"DEVENV_[A-Z][A-Z0-9_]*", path.read_text(errors="replace")):
                    found.setdefault(name, str(path.relative_to(REPOSITORY)))
    unknown = {name: where for name, where in found.items() if name not in settings | OTHER_VARIABLES}
    assert unknown == {}


@pytest.mark.parametrize(("region", "suggestion"), [("mars-north-9", None), ("us-est-1", "us-")])
def test_a_region_aws_does_not_have_is_refused(tmp_path: Path, region: str, suggestion: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, {"DEVENV_REGION": region})
    assert f"got {region!r}" in info.value.message and "not an AWS region" in info.value.message
    assert info.value.hint == "change region in environment (DEVENV_*)"
    if suggestion:
        assert "did you mean 'us-" in info.value.message


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "devenv.toml").write_text("alb_port = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, {})
    assert str(tmp_path / "devenv.toml") in info.value.message


def test_a_bad_value_names_the_key_and_its_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.devenv]\ntime_scale = 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, {})
    assert "'time_scale'" in info.value.message and "[tool.devenv]" in info.value.message


def test_an_unknown_key_in_the_file_lists_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "devenv.toml").write_text("alb_prot = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, {})
    assert "unknown setting 'alb_prot'" in info.value.message
    assert info.value.hint is not None and "alb_port" in info.value.hint


def test_llmproxy_dir_resolves_against_the_root_and_must_be_the_package(tmp_path: Path) -> None:
    package = tmp_path / "copy" / "llmproxy"
    package.mkdir(parents=True)
    (package / "__main__.py").write_text("")
    (tmp_path / "devenv.toml").write_text("llmproxy_dir = 'copy/llmproxy'\n")
    assert load_settings(tmp_path, {}).llmproxy_dir == package.resolve()
    for bad in ("copy", "copy/missing/llmproxy"):
        with pytest.raises(ConfigError) as info:
            load_settings(tmp_path, {"DEVENV_LLMPROXY_DIR": bad})
        assert "'llmproxy_dir'" in info.value.message and "DEVENV_*" in info.value.message
        assert info.value.hint is not None and "__main__.py" in info.value.hint
