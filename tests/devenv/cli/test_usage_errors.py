"""Every command answers a user's mistake with a usage message and exit 2, never a traceback.

The walk goes through `main`, the console script's entry point, in this process: each leaf command
is given an option it does not have, and every typed option (a number, a choice) a value it cannot
take. A new command or option is covered without touching this file.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from devenv.cli.app import app, main

BAD_VALUE = "not-a-valid-value"
TYPED = ("int", "float", "Literal", "OutputFormat", "Target", "Emulator")


def leaf_commands() -> Iterator[tuple[list[str], typing.Any]]:
    def walk(command: typing.Any, path: list[str]) -> Iterator[tuple[list[str], typing.Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    return walk(typer.main.get_command(app), [])


def typed_options() -> list[tuple[list[str], str]]:
    cases = []
    for path, command in leaf_commands():
        for param in command.params:
            if param.param_type_name == "option" and any(t in param.bare_type() for t in TYPED):
                cases.append((path, param.opts[0]))
    return cases


def run_main(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["devenv", *argv])
    monkeypatch.setenv("COLUMNS", "300")  # one line per message, so option names are never wrapped
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


@pytest.mark.parametrize("path", [p for p, _ in leaf_commands()], ids=" ".join)
def test_an_unknown_option_is_a_usage_error(
    path: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_main([*path, "--no-such-flag"], monkeypatch, capsys)
    assert code == 2, output
    assert "No such option: --no-such-flag" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("path", "option"), typed_options(), ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_a_bad_value_is_a_usage_error_naming_the_option(
    path: list[str], option: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_main([*path, option, BAD_VALUE], monkeypatch, capsys)
    assert code == 2, output
    assert f"Invalid value for '{option}'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["--no-such-flag"], "No such option: --no-such-flag"),
        (["status", "--state-dir", "X"], "--state-dir is a global option, put it before the command"),
        (["up", "--state-dir", "X"], "--state-dir is a global option, put it before the command"),
        (
            ["token", "create", "--state-dir", "X"],
            "--state-dir is a global option, put it before the command",
        ),
    ],
)
def test_root_mistakes_are_usage_errors(
    argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_main(argv, monkeypatch, capsys)
    assert code == 2
    assert expected in output
    assert "Traceback" not in output


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_main(["--version"], monkeypatch, capsys)
    assert code == 0
    assert output.startswith("devenv ")
    assert output.split()[1][0].isdigit()


def test_typed_options_are_found() -> None:
    """The walk really sees the typed options (else the bad-value test would test nothing)."""
    options = {(" ".join(path), option) for path, option in typed_options()}
    assert ("status", "--output") in options
    assert ("up", "--runtime") in options
    assert ("loadtest", "--users") in options


@pytest.mark.parametrize("detach", [[], ["-d"]], ids=["foreground", "detached"])
def test_up_outside_the_cdk_apps_project_says_so_before_starting_anything(
    detach: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no stack/ here
    state = tmp_path / "state"
    code, output = run_main(["--state-dir", str(state), "up", *detach], monkeypatch, capsys)
    assert code == 2
    assert f"no CDK app at {tmp_path.resolve() / 'stack'}: cdk.json and props/local.json missing" in output
    assert "--infra-only" in output
    assert not state.exists()  # nothing started, nothing written
