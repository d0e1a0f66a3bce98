"""`python -m devenv.dashboard --port PORT --state-dir DIR [--region R]`: the dashboard page of the local
stack, as `devenv up` runs it (devenv.services.dashboard) on 127.0.0.1.

It reads the emulator's URL from the state dir and the stack per request, so it answers (`/healthz`)
before the stack is deployed. Exit 2 when the state dir names no emulator, 4 when the port is taken.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devenv.dashboard.data import Reader
from devenv.dashboard.server import HOST, server
from devenv.errors import TargetError
from devenv.runtime.ports import is_free
from devenv.runtime.state import StateDir
from devenv.targets import aws_api


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.dashboard", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    state = StateDir(args.state_dir)
    try:
        api = aws_api.connect("local", state, args.region)
    except TargetError as exc:
        print(f"devenv dashboard: {exc.message}" + (f"; {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    if not is_free(args.port):
        print(f"devenv dashboard: port {args.port} on {HOST} is in use", file=sys.stderr)
        return 4
    server(Reader(api, logs_dir=state.logs), args.port).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
