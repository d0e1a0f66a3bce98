"""The state directory: layout, the supervisor's lock, and the state file other commands read.

The running supervisor holds an exclusive flock on `supervisor.lock` for its whole life, so a second
`devenv up` is refused reliably and a crashed supervisor never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devenv.errors import AlreadyRunningError


@dataclass(frozen=True)
class StateDir:
    """Paths under the project state directory (`.devenv/` by default)."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "supervisor.lock"

    def log_for(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def ensure(self) -> None:
        for folder in (self.root, self.data, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")

    def read(self) -> dict[str, Any]:
        """The last state the supervisor wrote, or {} when there is none."""
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write(self, state: dict[str, Any]) -> None:
        """Atomically replace the state file (readers never see half a document)."""
        tmp = self.state_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state, indent=2, default=str))
        tmp.replace(self.state_file)

    def supervisor_running(self) -> bool:
        """True while some process holds the supervisor lock."""
        if not self.lock_file.exists():
            return False
        with open(self.lock_file, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def acquire_supervisor_lock(self) -> IO[str]:
        """Take the lock for this process's lifetime; refuse if another supervisor has it."""
        self.ensure()
        handle = open(self.lock_file, "a+")  # noqa: SIM115 - held open for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            holder = self.read().get("supervisor", {}).get("pid")
            raise AlreadyRunningError(
                f"devenv is already running for {self.root}"
                + (f" (supervisor pid {holder})" if holder else ""),
                "use `devenv status` to see it, or `devenv down` to stop it first",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def wait_until_unlocked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.supervisor_running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True
