"""The saved local cloud: the emulator's state kept in a file, so a restart finds the stack it had.

On AWS the control plane keeps a stack between two working sessions; a fresh moto process has nothing, so
every `devenv up` re-created the whole stack (about 8 s) and an emulator restarted after a crash came back
empty. With `DEVENV_SAVED_CLOUD` set (devenv sets it to a file of the state's data directory, beside the
Postgres data the stack's database lives in), the emulator:
- restores that file before it serves its first request, when it was written by the same devenv, moto
  and Python (the key); a file it cannot read is reported (`GET /_devenv/saved-cloud`) and set aside;
- saves at a clean stop (SIGTERM: `devenv down`), when told a deploy finished (`POST
  /_devenv/saved-cloud`, which also records the deployed stack's template digest, so an unchanged stack
  is not deployed again: one record per stack, the app's stacks deploy one at a time), and every
  INTERVAL_S while requests change things.

What is saved: every moto backend in use (one pickle, so objects shared between services stay shared),
the target health the ALB mirror reported and the fault events (devenv.emulator.control). Locks are
pickled as new, unlocked locks. A save waits for the requests in flight and holds new ones, and holds the
emulator's own threads (the alarm evaluator, whose actions scale services; the metric pruning), so the
file is one consistent moment; the requests wait for the pickling only, not for the file to be written.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import pickle
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType
from typing import Any

import dill
import moto
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from moto.core.base_backend import BackendDict

import devenv
from devenv.emulator import alarms, control, metric_store, scheduler

ENV = "DEVENV_SAVED_CLOUD"
ROUTE = "/_devenv/saved-cloud"
FORMAT = 2  # bump when what a file holds changes shape
INTERVAL_S = 30.0
CAPTURE_ATTEMPTS = 5
STOPPED_REASON = "Task stopped: the local cloud was stopped (devenv down)"
log = logging.getLogger("devenv.emulator.saved_cloud")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}
PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    dsa.DSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    x25519.X25519PrivateKey,
    x448.X448PrivateKey,
)
PUBLIC_KEY_TYPES = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    dsa.DSAPublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
    x25519.X25519PublicKey,
    x448.X448PublicKey,
)
_state: dict[str, Any] = {"restored": False, "stacks": {}, "problem": None, "saved_at": None}
_save_lock = threading.Lock()


def key() -> dict[str, Any]:
    """What must match for a file to be restored: its format, devenv, moto and Python versions."""
    return {
        "format": FORMAT,
        "devenv": devenv.__version__,
        "moto": moto.__version__,
        "python": list(sys.version_info[:2]),
    }


def path() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def status() -> dict[str, Any]:
    """Whether the emulator restored a saved cloud, the stacks it holds (name: template digest), and why a
    file was set aside."""
    return {**_state, "stacks": dict(_state["stacks"])}


# -- what is saved ------------------------------------------------------------------------------------


def _location(backends: BackendDict[Any]) -> tuple[str, str]:
    """(module, attribute) of a BackendDict moto keeps as a module global (moto.ecs.models.ecs_backends)."""
    preferred = backends.backend.__module__
    names = [preferred] + [n for n in list(sys.modules) if n.startswith("moto.") and n != preferred]
    for name in names:
        module = sys.modules.get(name)
        for attribute, value in vars(module or object).items():
            if value is backends:
                return name, attribute
    raise LookupError(f"moto's {backends.service_name} backends are not a module global")


def _in_use() -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Every backend moto created, by where its BackendDict lives, then account and region."""
    return {
        _location(backends): {account: dict(regions) for account, regions in backends.items()}
        for backends in list(BackendDict._instances)  # type: ignore[misc]
        if len(backends)
    }


def _private_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None)


def _public_key(pem: bytes) -> Any:
    return serialization.load_pem_public_key(pem)


def _as_pem(value: Any) -> tuple[Callable[[bytes], Any], tuple[bytes]] | None:
    """How to save a key or certificate of `cryptography` (Rust objects pickle cannot save): as PEM."""
    if isinstance(value, x509.Certificate):
        return x509.load_pem_x509_certificate, (value.public_bytes(serialization.Encoding.PEM),)
    if isinstance(value, PRIVATE_KEY_TYPES):
        pem = value.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return _private_key, (pem,)
    if isinstance(value, PUBLIC_KEY_TYPES):
        pem = value.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return _public_key, (pem,)
    return None


def _empty(kind: type[defaultdict[Any, Any]], default_factory: Any) -> defaultdict[Any, Any]:
    made = kind.__new__(kind)
    made.default_factory = default_factory
    return made


class _Pickler(pickle.Pickler):
    """pickle (C: a save takes a fraction of a second), with what it cannot save alone:
    - a lock, as a new unlocked one (one held by some thread at the moment of the save is not held
      after a restore);
    - a function made at run time (moto's SSM keeps `defaultdict(lambda: ...)`), by dill;
    - a defaultdict subclass whose __init__ wants more than the factory (moto's SSM ParameterDict),
      rebuilt without calling it;
    - cryptography's keys and certificates (ACM, KMS), as PEM."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _LOCK_TYPES:
            return _LOCK_TYPES[kind], ()
        if kind is FunctionType and "<" in obj.__qualname__:  # <lambda>, <locals>
            return dill.loads, (dill.dumps(obj),)
        if isinstance(obj, defaultdict) and kind is not defaultdict:
            return _empty, (kind, obj.default_factory), obj.__dict__ or None, None, iter(obj.items())
        if kind.__module__.startswith("cryptography"):
            return _as_pem(obj) or NotImplemented
        return NotImplemented


class _BackgroundBusy(Exception):
    """A thread of the emulator kept a lock the capture needs (it may itself wait for a held request)."""


@contextmanager
def _background_held(timeout_s: float = 2.0) -> Iterator[None]:
    """The emulator's own threads change backends outside any request: the alarm evaluator (its actions
    update services, under the scheduler's lock) and the metric pruning. Held (in the order they take
    these locks) while a capture runs, so a capture sees one moment instead of failing on a dict that
    changed under it. Never waited for long: raises _BackgroundBusy (the save lets the requests go and
    tries again)."""
    held: list[Any] = []
    try:
        for lock in (alarms._lock, scheduler._lock, metric_store._lock):
            if not lock.acquire(timeout=timeout_s):
                raise _BackgroundBusy(f"a thread of the emulator kept a lock over {timeout_s} s")
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()


def capture() -> bytes:
    """The emulator's state as one pickle (call with requests and background threads held: see `save`)."""
    document = {
        "key": key(),
        "stacks": dict(_state["stacks"]),
        "backends": _in_use(),
        "control": control.saved_state(),
    }
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(document)
    return buffer.getvalue()


def _write(target: Path, payload: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    tmp.replace(target)


# -- restoring ----------------------------------------------------------------------------------------


class UnusableSnapshot(Exception):
    """A saved cloud that cannot be restored (unreadable, or written by another devenv, moto or Python)."""


def _load(target: Path) -> dict[str, Any]:
    try:
        document = pickle.loads(target.read_bytes())
    except Exception as exc:  # a truncated or foreign file raises any of a dozen kinds
        raise UnusableSnapshot(f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(document, dict) or "key" not in document:
        raise UnusableSnapshot("not a saved local cloud")
    if document["key"] != key():
        raise UnusableSnapshot(f"written by {document['key']}, this emulator is {key()}")
    return document


def _install(saved: dict[tuple[str, str], dict[str, dict[str, Any]]]) -> None:
    """Put the saved backends in moto's BackendDicts, where its responses look them up."""
    for (module, attribute), accounts in saved.items():
        backends = getattr(importlib.import_module(module), attribute)
        for account, regions in accounts.items():
            account_backends = backends[account]  # creates the account's dict and marks it in use
            for region, backend in regions.items():
                dict.__setitem__(account_backends, region, backend)


def restore() -> None:
    """Restore the saved cloud when there is a usable one; set an unusable one aside (status says why)."""
    target = path()
    if target is None or not target.exists():
        return
    started = time.monotonic()
    try:
        document = _load(target)
    except UnusableSnapshot as exc:
        aside = target.with_suffix(".unusable")
        target.replace(aside)
        _state["problem"] = f"the saved local cloud {target} is {exc}; it was set aside as {aside.name}"
        log.warning("%s", _state["problem"])
        return
    _install(document["backends"])
    control.restore_state(document["control"])
    _state.update(restored=True, stacks=dict(document["stacks"]))
    elapsed = time.monotonic() - started
    print(f"devenv cloud: restored the saved local cloud from {target} in {elapsed:.2f} s", flush=True)


# -- saving while serving -----------------------------------------------------------------------------


class SavingApp:
    """The emulator's app, counting requests in flight so a save can hold new ones and wait for the rest,
    and noting whether anything was asked since the last save."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._gate = threading.Condition()
        self._in_flight = 0
        self._holding = False
        self.changed = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == ROUTE:  # outside the count: a POST saves, which waits for it to be 0
            return handle(environ, start_response)
        with self._gate:
            while self._holding:
                self._gate.wait()
            self._in_flight += 1
            self.changed = True
        try:
            body = self._app(environ, start_response)
            try:
                return list(body)  # read while counted: a lazy body reads the backends too
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        finally:
            with self._gate:
                self._in_flight -= 1
                self._gate.notify_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No request runs inside this block."""
        with self._gate:
            self._holding = True
            while self._in_flight:
                self._gate.wait()
        try:
            yield
        finally:
            with self._gate:
                self._holding = False
                self._gate.notify_all()


_app: SavingApp | None = None


def serving(app: WSGIApp) -> WSGIApp:
    """`app` wrapped for saving, with the periodic save started (when a file is configured)."""
    global _app
    _app = SavingApp(app)
    if path() is not None:
        threading.Thread(target=_save_periodically, name="saved-cloud", daemon=True).start()
    return _app


def save(reason: str) -> Path | None:
    """Write the saved cloud now (None: no file configured). The requests are held while the state is
    pickled, not while the file is written; a capture a background thread got in the way of lets them go
    and starts again. Says how long the requests were held."""
    target = path()
    if target is None or _app is None:
        return None
    with _save_lock:
        held = 0.0
        for attempt in range(1, CAPTURE_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                with _app.paused(), _background_held():
                    payload = capture()
                    _app.changed = False
                break
            # "dictionary changed size during iteration": an attribute an alarm gets at its first
            # evaluation is set outside the evaluator's lock
            except (RuntimeError, _BackgroundBusy):
                if attempt == CAPTURE_ATTEMPTS:
                    raise
            finally:
                held += time.monotonic() - started
        written_at = time.monotonic()
        _write(target, payload)
    _state["saved_at"] = time.time()
    written = time.monotonic() - written_at
    print(
        f"devenv cloud: saved the local cloud ({reason}): {len(payload)} bytes; requests held "
        f"{held:.2f} s ({attempt} attempt{'s' if attempt > 1 else ''}), written in {written:.2f} s",
        flush=True,
    )
    return target


def save_at_stop() -> None:
    """The local cloud stops: its tasks stop with it (their processes are gone), their targets leave
    the target groups, then the cloud is saved."""
    if path() is None or _app is None:
        return
    with _app.paused():
        scheduler.stop_every_task(STOPPED_REASON)
        control.deregister_every_target()
    try:
        save("stop")
    except Exception as exc:  # the process ends either way; the next start deploys
        print(f"devenv cloud: saving the local cloud failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def deployed(stack: str, template: str) -> None:
    """A deploy of `stack` with the template of digest `template` finished: remember it, save at once."""
    _state["stacks"][stack] = template
    save(f"deploy of {stack}")


def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """`GET /_devenv/saved-cloud`: `status()`; `POST` with {"stack": NAME, "template": DIGEST}: a deploy of
    that stack finished (saved at once)."""
    method = environ.get("REQUEST_METHOD", "GET")
    code, body = "200 OK", status()
    if method == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            document = json.loads(environ["wsgi.input"].read(length) or b"{}")
            stack, template = document["stack"], document["template"]
            if not (isinstance(stack, str) and isinstance(template, str)):
                raise ValueError("both must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            code, body = "400 Bad Request", {"error": f'body must be JSON with "stack" and "template": {exc}'}
        else:
            try:
                deployed(stack, template)
                body = status()
            except Exception as exc:  # said to the caller, which reports it; the emulator serves on
                code, body = "500 Internal Server Error", {"error": f"{type(exc).__name__}: {exc}"}
    elif method != "GET":
        code, body = "405 Method Not Allowed", {"error": f"{method} {ROUTE}: use GET or POST"}
    payload = json.dumps(body).encode()
    start_response(code, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _save_periodically() -> None:
    while True:
        time.sleep(INTERVAL_S)
        if _app is not None and _app.changed:
            try:
                save("periodic")
            except Exception:  # keep serving; the next period tries again
                log.exception("saving the local cloud failed")
