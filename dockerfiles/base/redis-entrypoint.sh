#!/bin/sh
# The official redis image's calling convention: options alone run redis-server; redis-server runs with
# protected mode off (as that image is built), which later arguments may turn on again.
set -e
case "$1" in -* | *.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  shift
  case "$1" in
    *.conf) config=$1; shift; set -- redis-server "$config" --protected-mode no "$@" ;;
    *) set -- redis-server --protected-mode no "$@" ;;
  esac
fi
exec "$@"
