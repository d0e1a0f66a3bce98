"""Port checks: is a port free, who holds it, and a free one when asked to pick."""

from __future__ import annotations

import collections
import errno
import socket
import threading

import psutil

from devenv.errors import PortInUseError


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (checked by binding it, as the service will)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


# The ports free_port handed out lately. The kernel picks a port for bind(0) at random among ~14,000,
# so two calls can return the same one before either was bound: two tasks started at once would then share
# a port and an ALB target (the one that failed to bind, drained, takes the other's target with it).
_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=4096)
_handed_out_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now, and not one this process was given lately (its
    caller may not have bound it yet)."""
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.append(port)
                return port


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port the kernel says is free right now (the ALB mirror's DNS responder answers on one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def holder(port: int) -> str | None:
    """'name (pid N)' of the process listening on port, when the OS lets us see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def claim(service: str, setting: str, port: int, auto: bool) -> int:
    """The port a service will use: `port` if free; another free one if `auto`; else a clear error."""
    if is_free(port):
        return port
    if auto:
        return free_port()
    who = holder(port)
    raise PortInUseError(
        f"port {port} for {service} is in use" + (f" by {who}" if who else ""),
        f"stop that process, set another port (DEVENV_{setting.upper()}=... or {setting} in devenv.toml), "
        "or run with --auto-ports",
    )
