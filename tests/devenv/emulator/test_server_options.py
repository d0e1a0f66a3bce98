"""Strict mode is on unless DEVENV_CLOUD_STRICT turns it off (or `--no-strict`)."""

from __future__ import annotations

import pytest

from devenv.emulator.server import strict_from_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("1", True), ("true", True), ("0", False), ("false", False), ("off", False)],
)
def test_strict_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("DEVENV_CLOUD_STRICT", raising=False)
    else:
        monkeypatch.setenv("DEVENV_CLOUD_STRICT", value)
    assert strict_from_env() is expected
