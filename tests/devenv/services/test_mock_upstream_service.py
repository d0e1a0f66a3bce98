"""The mock upstream as `devenv up` starts it: its latency settings reach the process, so a stream shows
its first token well before its end; a bad setting is a config error naming it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from devenv.config import INSTANT_MOCK_UPSTREAM, Settings, environment, load_settings
from devenv.errors import ConfigError
from devenv.runtime.probes import wait_until_ready
from devenv.services.llmproxy import mock_upstream_args, mock_upstream_spec
from tests.llmproxy.conftest import CHAT, chunk_arrivals
from tests.ports import free_port


def test_up_defaults_give_streams_a_first_token_before_their_end(tmp_path: Path) -> None:
    settings = load_settings(root=tmp_path, environ={})
    port = free_port()
    spec = mock_upstream_spec(settings, port)
    # the defaults' draws, seeded: two free draws of a lognormal time to first token can differ by more
    # than the whole answer's generation (a few runs in a hundred), which says nothing about streaming
    seeded = {**os.environ, "MOCK_SEED": "3"}
    process = subprocess.Popen(spec.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=seeded)
    try:
        ready = wait_until_ready(spec.ready, 30, alive=lambda: process.poll() is None)
        assert ready.ok, (ready.detail, process.stderr and process.stderr.read())
        chat = f"http://127.0.0.1:{port}/v1/chat/completions"
        stream = chunk_arrivals(
            lambda: requests.post(chat, json={**CHAT, "stream": True}, stream=True, timeout=30)
        )
        whole = chunk_arrivals(lambda: requests.post(chat, json=CHAT, stream=True, timeout=30))
    finally:
        process.terminate()
        process.wait(timeout=10)
    tokens = 16  # the mock's default answer length
    assert len(stream) > tokens // 2, "the stream arrived in a few pieces, not token by token"
    assert stream[-1] - stream[0] >= tokens * settings.mock_upstream_inter_token_ms / 1000 / 2
    # an answer that is not streamed waits for its whole generation (seed 3: ~0.3 s against ~0.7 s)
    assert stream[0] < whole[-1], (stream[0], whole[-1])


def test_instant_mock_upstream_adds_no_latency(tmp_path: Path) -> None:
    settings = load_settings(root=tmp_path, environ=environment(INSTANT_MOCK_UPSTREAM))
    args = mock_upstream_args(settings, 8081)
    assert dict(zip(args[::2], args[1::2], strict=True)) == {
        "--host": "127.0.0.1",
        "--port": "8081",
        "--ttft": "0",
        "--inter-token-ms": "0.0",
        "--latency": "0",
    }


def test_a_toml_number_is_a_fixed_latency(tmp_path: Path) -> None:
    (tmp_path / "devenv.toml").write_text("mock_upstream_ttft = 250\nmock_upstream_latency = 12.5\n")
    settings = load_settings(root=tmp_path, environ={})
    assert (settings.mock_upstream_ttft, settings.mock_upstream_latency) == ("250", "12.5")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("mock_upstream_ttft", "gauss:1", "unknown latency distribution 'gauss'"),
        ("mock_upstream_latency", "uniform:5", "takes 2 number(s)"),
        ("mock_upstream_inter_token_ms", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_latency_setting_names_it(name: str, value: str, problem: str, tmp_path: Path) -> None:
    assert name in Settings.model_fields
    with pytest.raises(ConfigError) as caught:
        load_settings(root=tmp_path, environ={f"DEVENV_{name.upper()}": value})
    assert f"bad value for {name!r}" in str(caught.value) and problem in str(caught.value)
