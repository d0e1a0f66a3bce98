"""`python -m llmproxy proxy`: the LLM Proxy HTTP service (uvicorn + uvloop + httptools, one process).

SIGTERM: /ready turns 503 at once; after DRAIN_DELAY seconds the listener closes, in-flight requests and
streams finish (up to DRAIN_TIMEOUT), the event buffer is flushed, pools close, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import sys
from types import FrameType

import uvicorn
import uvloop

from llmproxy.app import ProxyApp, Services, build_services
from llmproxy.db import DatabaseUnavailable
from llmproxy.keys import DecryptionError
from llmproxy.process import start
from llmproxy.settings import ProxySettings, load_proxy_settings

log = logging.getLogger("llmproxy.proxy")


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM first marks the service as draining, then stops after a delay."""

    def __init__(self, config: uvicorn.Config, services: Services, drain_delay: float) -> None:
        super().__init__(config)
        self.services = services
        self.drain_delay = drain_delay
        self.loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals: uvicorn would re-raise it after a clean shutdown (exit -15).
        if self.services.draining:
            self.force_exit = sig == signal.SIGINT
            self.should_exit = True
            return
        self.services.draining = True
        self.loop.call_soon_threadsafe(self._begin_drain, sig)

    def _begin_drain(self, sig: int) -> None:
        log.info(
            "received %s: draining (ready=503), stopping in %.1fs", signal.Signals(sig).name, self.drain_delay
        )
        self.loop.call_later(self.drain_delay, setattr, self, "should_exit", True)


async def serve(settings: ProxySettings) -> int:
    try:
        services = await build_services(settings)
    except DatabaseUnavailable as exc:
        print(f"llmproxy proxy: {exc} (check DATABASE_URL and that Postgres is up)", file=sys.stderr)
        return 1
    except DecryptionError as exc:
        print(f"llmproxy proxy: {exc}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        ProxyApp(services),
        host=settings.listen_host,
        port=settings.listen_port,
        loop="none",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        log_config=None,
        backlog=4096,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout),
    )
    server = DrainingServer(config, services, settings.drain_delay)
    try:
        await server.serve()
    finally:
        await services.close()
    log.info("stopped")
    return 0


def main(argv: list[str]) -> int:
    return start(
        "proxy",
        "The LLM Proxy: configured by environment variables (see llmproxy/settings.py).",
        argv,
        load_proxy_settings,
        lambda settings: uvloop.run(serve(settings)),
    )
