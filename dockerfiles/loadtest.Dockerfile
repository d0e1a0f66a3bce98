# syntax=docker/dockerfile:1
# Locust with the project's locustfile, load shapes and thresholds (loadtests/ + devenv.loadtest and the
# management API client it provisions with):
# the compose `loadtest` profile runs one master (web UI on 8089) and N workers from this image.
#
#   docker build -f dockerfiles/loadtest.Dockerfile -t devenv-loadtest:local .
#
# Versions come from uv.lock (exported as constraints); only Locust and what the locustfile imports (boto3:
# a stack run's master writes its results to the stack's bucket).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.8
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --no-emit-project --no-hashes --output-file /tmp/constraints.txt \
    && uv venv /opt/venv \
    && VIRTUAL_ENV=/opt/venv uv pip install --no-cache --constraint /tmp/constraints.txt \
        locust pyyaml rich boto3

FROM ${PYTHON_IMAGE} AS loadtest
LABEL org.opencontainers.image.title="devenv-loadtest" \
      org.opencontainers.image.description="Locust with the LLM Proxy locustfile, shapes and thresholds"
RUN groupadd --system --gid 10001 devenv \
    && useradd --system --uid 10001 --gid devenv --home-dir /reports --shell /usr/sbin/nologin devenv \
    && mkdir -p /reports && chown devenv:devenv /reports
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY devenv/__init__.py devenv/errors.py /app/devenv/
COPY devenv/loadtest/ /app/devenv/loadtest/
COPY devenv/targets/__init__.py devenv/targets/management.py /app/devenv/targets/
COPY loadtests/ /app/loadtests/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOCUST_LOCUSTFILE=/app/loadtests/locustfile.py
USER 10001:10001
WORKDIR /reports
EXPOSE 8089 5557
# Workers serve no HTTP; the master (and a standalone run) answers on the web UI port.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; os.environ.get('LOCUST_MODE_WORKER') == 'true' or urllib.request.urlopen('http://127.0.0.1:8089/', timeout=2)"]
ENTRYPOINT ["locust"]
