"""Generated secret values that outlive the emulator: kept in a file of the state directory.

On AWS a stack's generated secrets live as long as the stack. The local emulator forgets everything when
it stops, while the local Postgres keeps its data, so a second `devenv up` would generate a new
ENCRYPTION_KEY and database password for the same data. With `DEVENV_GENERATED_SECRETS` set (devenv sets it
to `<state>/run/generated-secrets.json`), a secret generated once for a name is generated the same again.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

ENV = "DEVENV_GENERATED_SECRETS"
_lock = threading.Lock()


def remembered(name: str, generate: Callable[[], str]) -> str:
    """The value generated earlier for `name`, or a new one (then kept); no file configured: always new."""
    path = os.environ.get(ENV)
    if not path:
        return generate()
    store = Path(path)
    with _lock:
        values = json.loads(store.read_text()) if store.exists() else {}
        if name not in values:
            values[name] = generate()
            tmp = store.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(values, handle)
            tmp.replace(store)
        return str(values[name])
