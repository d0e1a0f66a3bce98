"""`python -m devenv.emulator --host 127.0.0.1 --port PORT --region REGION [--no-strict]`: the emulator process.

Ready when `GET /moto-api/` answers 200. Strict mode is on unless `--no-strict` or DEVENV_CLOUD_STRICT=0.
DEVENV_TIME_SCALE (default 1) divides every alarm period and scaling cooldown it applies.
"""

from __future__ import annotations

import argparse
import errno
import sys

from devenv.emulator import time_scale
from devenv.emulator.server import serve_forever, strict_from_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--no-strict", action="store_true", help="let moto skip resource types it has no model for"
    )
    args = parser.parse_args(argv)
    strict = strict_from_env() and not args.no_strict
    try:
        scale = time_scale.from_env()
    except time_scale.BadTimeScale as exc:
        print(f"devenv cloud: {exc}", file=sys.stderr)
        return 2
    try:
        return serve_forever(args.host, args.port, args.region, strict, scale)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"devenv cloud: port {args.port} on {args.host} is in use; pick another port", file=sys.stderr
            )
            return 4
        raise


if __name__ == "__main__":
    sys.exit(main())
