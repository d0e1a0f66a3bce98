"""The dashboard's web server: one page, its static files (the chart library ships in the package, so the
page works offline) and one JSON endpoint, served by uvicorn on 127.0.0.1 only: the page shows a
target's resources and is not meant for anyone else on the network.

GET /api/data?range=1h|3h|<N>h|<N>m, or ?start=&end= (epoch seconds): everything data.Reader reads, for
that window ending now (or between start and end). A bad range is a 400 naming it.
GET /api/logs?cluster=&service=&task=: the task's log tail (data.Reader.task_log); 404 when it has none.
GET /healthz: 200 once the server answers (the supervisor's readiness probe; it reads no AWS API).
The page reads ?start=&end= from its own URL, so a report can link to its run's window.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from devenv.dashboard.data import Reader, dumps
from devenv.errors import TargetError

STATIC = Path(__file__).parent / "static"
HOST = "127.0.0.1"
RANGE = re.compile(r"^(\d+)([mhd])$")
UNIT_S = {"m": 60, "h": 3600, "d": 86400}
MAX_RANGE_S = 15 * 86400  # CloudWatch keeps 15 days of minute data
NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # an ECS cluster or service name
TASK_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class BadWindow(ValueError):
    """A window the endpoint refuses; the message says what is accepted."""


def window(query: dict[str, str], now: float) -> tuple[float, float]:
    """[start, end) in epoch seconds from ?range= (default 1h) or ?start=&end=."""
    if "start" in query or "end" in query:
        try:
            start, end = float(query["start"]), float(query.get("end", now))
        except (KeyError, ValueError):
            raise BadWindow(
                "start and end must be epoch seconds, e.g. ?start=1767225600&end=1767229200"
            ) from None
        if not 0 < start < end:
            raise BadWindow("start must be before end (epoch seconds)")
        return start, end
    text = query.get("range", "1h")
    match = RANGE.match(text)
    if not match or int(match[1]) == 0:
        raise BadWindow(f"range {text!r} is not a duration: use e.g. 1h, 3h, 30m, 1d")
    span = int(match[1]) * UNIT_S[match[2]]
    if span > MAX_RANGE_S:
        raise BadWindow(f"range {text!r} is longer than CloudWatch keeps (15 days)")
    return now - span, now


def app(reader: Reader) -> Starlette:
    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    def data(request: Request) -> Response:
        try:
            start, end = window(dict(request.query_params), time.time())
        except BadWindow as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return Response(dumps(reader.everything(start, end)), media_type="application/json")

    def task_log(request: Request) -> Response:
        query = request.query_params
        cluster, service, task = (query.get(k, "") for k in ("cluster", "service", "task"))
        if not (NAME.match(cluster) and NAME.match(service) and TASK_ID.match(task)):
            return JSONResponse(
                {"error": "cluster, service and task must be an ECS cluster name, service name and task id"},
                status_code=400,
            )
        try:
            return Response(dumps(reader.task_log(cluster, service, task)), media_type="application/json")
        except TargetError as exc:
            return JSONResponse({"error": exc.message}, status_code=404)
        except Exception as exc:  # the target's API refused: say what it said
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=502)

    def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/healthz", healthz),
            Route("/api/data", data),
            Route("/api/logs", task_log),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )


def server(reader: Reader, port: int) -> uvicorn.Server:
    """A uvicorn server for the dashboard on 127.0.0.1:`port` (0: a free port, read from the started
    server's sockets)."""
    return uvicorn.Server(uvicorn.Config(app(reader), host=HOST, port=port, log_level="warning"))
