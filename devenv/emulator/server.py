"""The emulator: moto's server with devenv's models and CloudFormation behaviour installed.

Importing moto's CloudFormation (every backend it can create resources in) and devenv's models takes
seconds. The process listens first and loads them in the background: the readiness path answers at
once, and every AWS request (and /_devenv/ call) waits until the models are in, so none is served
without them. A client that starts early waits on its first call instead of polling for readiness.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

READY_PATH = "/moto-api/"  # the readiness probe's path (devenv.services.emulator)
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

STRICT_ENV = "DEVENV_CLOUD_STRICT"
REGIONS_MODULE = "moto.ec2.models.availability_zones_and_regions"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def strict_from_env(default: bool = True) -> bool:
    value = os.environ.get(STRICT_ENV)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off")


def load_moto_regions() -> None:
    """Import moto's region lists with `boto3.Session()` as one shared session: moto.ec2 builds three at
    import, and each parses botocore's endpoint data again (0.2-0.4 s each, a third of moto's load)."""
    import boto3

    if REGIONS_MODULE in sys.modules:
        return
    original = boto3.Session
    shared = original()
    boto3.Session = lambda *args, **kwargs: shared if not (args or kwargs) else original(*args, **kwargs)
    try:
        importlib.import_module(REGIONS_MODULE)  # binds `Session` once, at import
    finally:
        boto3.Session = original


def prepare(region: str, strict: bool, scale: float = 1.0) -> None:
    """Credentials and region moto reads, then the models and patches (before any request), then the
    alarm evaluator."""
    load_moto_regions()
    from devenv.emulator import alarms, moto_patches, stacks, time_scale

    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_REGION"] = region
    time_scale.set_factor(scale)
    stacks.set_strict(strict)
    moto_patches.install()  # fails here, naming the patch, on a moto whose internals changed
    alarms.start()


def emulator_app(region: str, strict: bool, scale: float = 1.0) -> WSGIApp:
    """moto's server app with devenv's models installed, the /_devenv/ routes in front, and the saved
    local cloud restored (devenv.emulator.saved_cloud)."""
    prepare(region, strict, scale)
    from moto.server import DomainDispatcherApplication, create_backend_app

    from devenv.emulator import control, saved_cloud

    saved_cloud.restore()
    return saved_cloud.serving(control.wrap(DomainDispatcherApplication(create_backend_app)))


class LoadingApp:
    """Builds the emulator's app in a background thread; answers the readiness path at once and
    holds every other request until the app is built. A failed build ends the process."""

    def __init__(self, build: Callable[[], WSGIApp]) -> None:
        self._app: WSGIApp | None = None
        self._built = threading.Event()
        threading.Thread(target=self._build, args=(build,), name="load-models", daemon=True).start()

    def _build(self, build: Callable[[], WSGIApp]) -> None:
        try:
            self._app = build()
        except BaseException as exc:
            print(f"devenv cloud: loading the models failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            os._exit(1)
        self._built.set()

    @property
    def built(self) -> bool:
        return self._built.is_set()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self._built.is_set() and environ.get("PATH_INFO") == READY_PATH:
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
            return [b"{}"]
        self._built.wait()
        assert self._app is not None
        return self._app(environ, start_response)


def serve_forever(host: str, port: int, region: str, strict: bool, scale: float = 1.0) -> int:
    """Run in the foreground until SIGTERM or SIGINT (then save the local cloud); exit code 0 on either."""
    app = LoadingApp(lambda: emulator_app(region, strict, scale))
    server: BaseWSGIServer = make_server(host, port, app, threaded=True)
    # Keep-alive connections hold request threads; they must not block the exit on SIGTERM.
    server.daemon_threads = True  # type: ignore[attr-defined]
    server.block_on_close = False  # type: ignore[attr-defined]

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"devenv cloud: moto on http://{host}:{port} region={region} strict={strict} time_scale={scale:g}",
        flush=True,
    )
    server.serve_forever()
    server.server_close()
    if app.built:
        from devenv.emulator import saved_cloud

        saved_cloud.save_at_stop()
    return 0
