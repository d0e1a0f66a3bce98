#!/usr/bin/env bash
# What devenv and compose use of the official postgres image's entry point: on first start, a cluster
# whose superuser is POSTGRES_USER with POSTGRES_PASSWORD (scram over TCP from anywhere, trust on the
# local socket) and a database POSTGRES_DB; then `postgres ARGS` as the postgres user.
set -Eeuo pipefail
if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?is not set: the superuser needs a password (as with the official image)}"
  user=${POSTGRES_USER:-postgres}
  database=${POSTGRES_DB:-$user}
  initdb --pgdata="$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C --no-sync >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [ "$database" != postgres ]; then
    echo "CREATE DATABASE \"$database\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  echo "docker-entrypoint: made the cluster in $PGDATA (superuser $user, database $database)"
fi
exec "$@"
