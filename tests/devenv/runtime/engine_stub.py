"""A recording stub of the Docker Engine API on a Unix socket, for what needs a daemon where none can
run (FACTS.md): it answers the calls testcontainers and docker-py make in a container's life and keeps
every request, so tests read the container spec Docker would get. Tests against a real daemon are in
test_docker.py and run wherever one answers.
"""

from __future__ import annotations

import contextlib
import json
import re
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any


@dataclass
class EngineStub:
    """Answers the Docker Engine API calls of a container's life; records every request."""

    images: set[str]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=lambda: {"OperatingSystem": "Debian", "SecurityOptions": []})
    on_start: Callable[[dict[str, Any]], None] = lambda container: None  # what "running" it means to a test

    def created(self) -> list[dict[str, Any]]:
        return [
            body for method, path, body in self.requests if method == "POST" and "/containers/create" in path
        ]

    def calls(self, method: str, pattern: str) -> list[str]:
        return [path for m, path, _ in self.requests if m == method and re.search(pattern, path)]

    def running(self) -> list[str]:
        return [cid for cid, c in self.containers.items() if c["State"]["Status"] == "running"]

    def exit(self, cid: str, code: int) -> None:
        """The container's process ends on its own with `code`."""
        self.containers[cid]["State"] = {"Status": "exited", "ExitCode": code}

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        route = re.sub(r"^/v[\d.]+", "", path.split("?")[0])
        query = path.split("?", 1)[1] if "?" in path else ""
        if route == "/version":
            return 200, {"ApiVersion": "1.45", "MinAPIVersion": "1.24", "Version": "27.0.0"}
        if route == "/info":
            return 200, self.info
        if route == "/_ping":
            return 200, b"OK"
        if method == "GET" and (match := re.fullmatch(r"/images/(.+)/json", route)):
            known = match[1] in self.images
            return (200, {"Id": "sha256:" + "0" * 64}) if known else (404, {"message": "no such image"})
        if method == "GET" and route == "/containers/json":
            return 200, [{"Id": cid, **c} for cid, c in self.containers.items()]
        if method == "DELETE" and (match := re.fullmatch(r"/volumes/(.+)", route)):
            self.volumes.discard(match[1])
            return 204, None
        if method == "GET" and (match := re.fullmatch(r"/volumes/(.+)", route)):
            return (
                (200, {"Name": match[1]})
                if match[1] in self.volumes
                else (404, {"message": "no such volume"})
            )
        if method == "POST" and route == "/containers/create":
            cid = f"c{len(self.requests):063d}"
            self.containers[cid] = {
                "Id": cid,
                "Name": "/" + query.split("name=")[-1].split("&")[0],
                "Config": {"Tty": False, **body},
                "State": {"Status": "created"},
                "RestartCount": 0,
                "NetworkSettings": {"Ports": {}},
            }
            return 201, {"Id": cid, "Warnings": []}
        if match := re.fullmatch(r"/containers/([\w.-]+)(/\w+)?", route):
            found = next((k for k, c in self.containers.items() if match[1] in (k, c["Name"][1:])), None)
            if found is None:
                return 404, {"message": "no such container"}
            cid = found
            container = self.containers[cid]
            action = match[2]
            if action == "/start":
                container["State"] = {"Status": "running", "Pid": 1}  # pid 1 here is not the container
                self.on_start(container)
                return 204, None
            if action == "/stop":
                self.exit(cid, 0)  # the process handled SIGTERM
                return 204, None
            if action == "/wait":
                while container["State"]["Status"] != "exited":
                    time.sleep(0.05)
                return 200, {"StatusCode": container["State"]["ExitCode"]}
            if action == "/archive" and method == "PUT":
                return 200, None
            if action == "/logs":
                return 200, b""
            if action == "/json":
                return 200, container
            if method == "DELETE" and action is None:
                del self.containers[cid]
                return 204, None
        return 404, {"message": f"the stub does not know {method} {route}"}


@contextlib.contextmanager
def serve(folder: Path, images: set[str]) -> Iterator[tuple[EngineStub, str]]:
    """The stub listening on a Unix socket in `folder`; yields it and its DOCKER_HOST."""
    stub = EngineStub(images=images)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            is_json = "json" in (self.headers.get("Content-Type") or "")
            body = (json.loads(raw) if is_json else raw) if raw else None
            status, payload = stub.answer(self.command, self.path, body)
            data = (
                payload
                if isinstance(payload, bytes)
                else b""
                if payload is None
                else json.dumps(payload).encode()
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, *args: Any) -> None:
            pass

        def address_string(self) -> str:  # a Unix socket has no client address
            return "stub"

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    sock = folder / "docker.sock"
    server = Server(str(sock), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stub, f"unix://{sock}"
    finally:
        server.shutdown()
        server.server_close()
