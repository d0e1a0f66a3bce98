"""The realizer's reconcile loop on a thread of the test, as the supervisor runs it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from devenv.realize.realizer import Realizer


@contextmanager
def running(realizer: Realizer) -> Iterator[Realizer]:
    """Reconcile until the block ends, then stop the loop and the realizer's processes."""
    stop = threading.Event()
    loop = threading.Thread(target=realizer.run, args=(stop,), daemon=True)
    loop.start()
    try:
        yield realizer
    finally:
        stop.set()
        loop.join()
        realizer.shutdown()
