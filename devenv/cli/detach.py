"""The detached supervisor of `up -d`: a process in its own session, its output in the supervisor log.

On Linux it is forked from the `up -d` process, which has already imported devenv, Typer, rich and the
settings (a new interpreter spends about a second importing them again: most of an infra-only `up -d`).
On macOS it is a new interpreter (`up --detached-child`): its system frameworks are not safe to use in a
child forked without an exec.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from devenv.cli.application import Application, OutputFormat, console, print_error
from devenv.errors import DevenvError
from devenv.runtime import logfiles

FORK = sys.platform != "darwin"


class Child(Protocol):
    """What `up -d` needs of the supervisor it started (subprocess.Popen has it, so has ForkedChild)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


@dataclass
class ForkedChild:
    """A forked child, with Popen's poll/wait/terminate/kill (the exit code as Popen gives it)."""

    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"supervisor (pid {self.pid})", timeout or 0)
            time.sleep(0.05)
        return code

    def terminate(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


def start_supervisor(
    app: Application, log_path: Path, argv: list[str], supervise: Callable[[Application], None]
) -> Child:
    """Start the supervisor detached: `supervise(app)` in a forked child, or `argv` (the same `up`, as
    `--detached-child`) in a new interpreter where forking is unsafe."""
    if not FORK:
        with open(log_path, "ab") as log:
            log.write(logfiles.marker(f"starting the supervisor: {' '.join(argv)}").encode())
            log.flush()
            return subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
    with open(log_path, "ab") as log:
        log.write(
            logfiles.marker(
                f"starting the supervisor: forked from `devenv up -d` (pid {os.getpid()})"
            ).encode()
        )
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return ForkedChild(pid)
    _run_forked(app, log_path, supervise)  # never returns


def _run_forked(app: Application, log_path: Path, supervise: Callable[[Application], None]) -> NoReturn:
    """The forked child: its own session, stdin from /dev/null, stdout and stderr to the log, no other
    descriptor of the parent's (a caller's pipe held open would keep it waiting), then `supervise`; it
    exits with the code `devenv up` would have, and never returns into the parent's command."""
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115 - own streams
        app.out, app.err = console(sys.stdout), console(sys.stderr)
        app.output, app.quiet = OutputFormat.text, False  # the log has every step, whatever the caller asked
        supervise(app)
        code = 0
    except DevenvError as exc:
        print_error(exc)
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a bug: its trace in the log, as the interpreter would print it
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
