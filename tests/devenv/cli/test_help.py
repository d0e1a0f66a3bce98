"""`--help` is readable: defaults shown as written, no type placeholders for flags or lists, and a short
flag means one thing in every command. Every command and group is walked, so a new one is covered."""

from __future__ import annotations

import pytest

from devenv.cli.app import main
from tests.devenv.cli.test_usage_errors import leaf_commands, run_main

ALL_HELP = [[], *[path for path, _ in leaf_commands()]]


@pytest.mark.parametrize("path", ALL_HELP, ids=lambda path: " ".join(path) or "devenv")
def test_help_has_no_type_placeholders_for_flags_or_lists(
    path: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_main([*path, "--help"], monkeypatch, capsys)
    assert code == 0, output
    assert "<bool>" not in output
    assert "<list[" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("path", "default"),
    [
        ([], "[default: .devenv]"),  # written in the help text: no markup may eat it
        (["up"], "[default: auto]"),
        (["logs"], "[default: 50; x>=0]"),  # added by the option itself
        (["deploy"], "[env var: DEVENV_TARGET; default: local]"),
    ],
)
def test_help_shows_defaults(
    path: list[str], default: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_main([*path, "--help"], monkeypatch, capsys)
    assert code == 0
    assert default in " ".join(output.split())  # the help is wrapped at 80 columns


def test_a_short_flag_means_one_thing_across_commands() -> None:
    meanings: dict[str, set[str]] = {}
    for _, command in leaf_commands():
        for param in command.params:
            longs = [o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")]
            for short in (o for o in param.opts if len(o) == 2):
                meanings.setdefault(short, set()).update(longs[:1])
    clashes = {short: sorted(longs) for short, longs in meanings.items() if len(longs) > 1}
    assert not clashes, f"short flags with several meanings: {clashes}"
    assert meanings["-d"] == {"--detach"}  # the walk sees the options it should


def test_main_is_the_console_script() -> None:
    """The help walk goes through the same entry point the `devenv` script runs."""
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["devenv"] == f"{main.__module__}:{main.__name__}"
