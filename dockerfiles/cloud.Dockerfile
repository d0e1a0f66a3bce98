# syntax=docker/dockerfile:1
# devenv's local cloud: the extended moto server (CloudFormation models moto lacks, strict mode) that
# `devenv deploy --target local` deploys the CDK app to. The image holds all of devenv/, so the realizer
# can run from it too; its entry point is the emulator.
#
#   docker build -f dockerfiles/cloud.Dockerfile -t devenv-cloud:local .
#   docker buildx build --platform linux/amd64,linux/arm64 -f dockerfiles/cloud.Dockerfile -t devenv-cloud:local .
#
# Only what the cloud imports is installed, at the versions uv.lock pins (the lock is exported as
# constraints), so the image carries neither the CDK (~240 MB) nor the load-test or plotting stacks. A new
# import of the emulator (devenv/emulator, devenv/services/tls.py) goes in the list below as well:
# tests/dockerfiles/test_dockerfiles.py fails on one that is missing (dill: the saved local cloud).

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
        "moto[server]" boto3 asyncpg redis pyyaml pydantic docker testcontainers psutil dill

FROM ${PYTHON_IMAGE} AS cloud
LABEL org.opencontainers.image.title="devenv-cloud" \
      org.opencontainers.image.description="devenv's local AWS: the extended moto server"
# /var/lib/devenv-cloud keeps the generated secrets; a fresh named volume mounted there inherits its owner.
RUN groupadd --system --gid 10001 devenv \
    && useradd --system --uid 10001 --gid devenv --no-create-home --shell /usr/sbin/nologin devenv \
    && mkdir -p /var/lib/devenv-cloud && chown 10001:10001 /var/lib/devenv-cloud
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY devenv/ /app/devenv/
# devenv's settings check the mock upstream's latency specs with its own parser (pure Python)
COPY llmproxy/__init__.py /app/llmproxy/__init__.py
COPY llmproxy/mock/__init__.py llmproxy/mock/latency.py /app/llmproxy/mock/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 4566
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4566/moto-api/', timeout=2)"]
ENTRYPOINT ["python", "-m", "devenv.emulator"]
CMD ["--host", "0.0.0.0", "--port", "4566", "--region", "us-east-1"]
