# devenv-base/python-3.11:local: Python 3.11 from Debian bookworm's packages, the PYTHON_IMAGE build argument of
# the project's Dockerfiles where no image registry answers (python -m devenv.services.images build).
# As in the official python image, `python` and `pip` are on PATH (a venv: Debian's pip refuses the
# system site). The build context holds the host's CA bundle, which the image trusts, so pip and uv
# reach the package registry through whatever TLS proxy the host trusts.
ARG DEBIAN_IMAGE=devenv-base/debian-bookworm:local
FROM ${DEBIAN_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/python/bin:$PATH \
    LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python"]
