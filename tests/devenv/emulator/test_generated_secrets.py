"""Generated secrets are kept per name in the state dir's file, so a restarted emulator gives the same."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from devenv.emulator import generated_secrets


def test_the_same_name_gets_the_same_value_across_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = itertools.count()
    store = tmp_path / "generated-secrets.json"
    monkeypatch.setenv(generated_secrets.ENV, str(store))
    first = generated_secrets.remembered(
        "us-east-1/llm-proxy/encryption-key", lambda: f"value-{next(counter)}"
    )
    again = generated_secrets.remembered(
        "us-east-1/llm-proxy/encryption-key", lambda: f"value-{next(counter)}"
    )
    other = generated_secrets.remembered(
        "us-east-1/llm-proxy/management-token", lambda: f"value-{next(counter)}"
    )
    assert first == again == "value-0" and other == "value-1"
    assert store.stat().st_mode & 0o777 == 0o600


def test_without_a_store_every_generation_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(generated_secrets.ENV, raising=False)
    counter = itertools.count()
    values = {generated_secrets.remembered("x", lambda: str(next(counter))) for _ in range(3)}
    assert values == {"0", "1", "2"}
