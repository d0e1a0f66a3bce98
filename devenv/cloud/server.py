"""The emulator: moto's server with devenv's models and CloudFormation behaviour installed."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from devenv.cloud import control, stacks

STRICT_ENV = "DEVENV_CLOUD_STRICT"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def strict_from_env(default: bool = True) -> bool:
    value = os.environ.get(STRICT_ENV)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off")


def prepare(region: str, strict: bool) -> None:
    """Credentials and region moto reads, then the models and patches (before any request)."""
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_REGION"] = region
    stacks.install(strict=strict)
    control.install()  # the ECS scheduler and the fault side channel the realizer reads


def start_in_thread(
    host: str, port: int, region: str = "us-east-1", strict: bool = True
) -> ThreadedMotoServer:
    """An in-process emulator (tests, `devenv` embedding); stop it with `.stop()`."""
    prepare(region, strict)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def serve_forever(host: str, port: int, region: str, strict: bool) -> int:
    """Run in the foreground until SIGTERM or SIGINT; exit code 0 on either."""
    prepare(region, strict)
    app = control.wrap(DomainDispatcherApplication(create_backend_app))
    server: BaseWSGIServer = make_server(host, port, app, threaded=True)
    # Keep-alive connections hold request threads; they must not block the exit on SIGTERM.
    server.daemon_threads = True  # type: ignore[attr-defined]
    server.block_on_close = False  # type: ignore[attr-defined]

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"devenv cloud: moto on http://{host}:{port} region={region} strict={strict}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0
