"""The errors devenv raises for things a user can fix, and the exit code each maps to.

Every command raises one of these instead of printing and exiting itself; `devenv.cli.app.main`
is the one place that turns them into a message and an exit code.
"""

from __future__ import annotations


class DevenvError(Exception):
    """A problem the user can act on: `message` says what is wrong, `hint` what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(DevenvError):
    """A bad flag, config value or argument."""

    exit_code = 2


class ConfigError(UsageError):
    """A bad configuration value; the message names the key (and the file it came from)."""


class TargetError(DevenvError):
    """A target (the proxy of `devenv up`, a URL, a deployed stack) cannot be resolved, reached or used:
    a set-up problem, not a test result."""

    exit_code = 2


class MissingDependencyError(DevenvError):
    """A binary or package devenv needs is not installed."""

    exit_code = 3


class PortInUseError(DevenvError):
    """A port devenv wants is taken by another process."""

    exit_code = 4


class ServiceFailedError(DevenvError):
    """A service did not become ready, or died; the message carries its log tail."""

    exit_code = 5


class AlreadyRunningError(DevenvError):
    """Another `devenv up` owns this state directory."""

    exit_code = 6


class NotRunningError(DevenvError):
    """The command needs a running environment and there is none."""

    exit_code = 7


class AbortedError(DevenvError):
    """Ctrl-C or SIGTERM stopped a command before it was done (what it started was stopped); 128 + SIGINT,
    as shells report an interrupted command."""

    exit_code = 130
