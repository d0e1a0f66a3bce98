# devenv-base/redis-7:local: Redis 7 from Debian bookworm's packages, for DEVENV_REDIS_IMAGE where no image registry
# answers. Used as the official redis:7 image is: `redis-server ARGS` (or ARGS alone), redis-cli on PATH,
# protected mode off (the official build turns it off), run as the `redis` user (uid 999), /data its folder.
ARG DEBIAN_IMAGE=devenv-base/debian-bookworm:local
FROM ${DEBIAN_IMAGE}
# the user first, with the official image's uid (999): the package keeps an existing redis user
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /var/lib/redis --shell /usr/sbin/nologin redis \
    && apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
USER 999:999
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
