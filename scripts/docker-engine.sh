#!/usr/bin/env bash
# A Docker Engine of devenv's own, for a Linux machine without a daemon (a CI runner, a laptop):
#
#   scripts/docker-engine.sh start    install what is missing (apt: docker.io, and mmdebstrap and docker-compose
#                                     for the air-gapped images and the compose path), start a rootful dockerd
#                                     on its own socket and data root, wait until it answers; prints
#                                     DOCKER_HOST=unix://... on stdout (so: export "$(scripts/docker-engine.sh start)")
#   scripts/docker-engine.sh stop     stop it (its containers stop with it; images stay in the data root)
#   scripts/docker-engine.sh status   whether it answers (exit 0) or not (exit 1), with its DOCKER_HOST
#
# Options (any command): --data-root DIR (default /var/lib/devenv-docker), --exec-root DIR (default
# /run/devenv-docker; the socket is DIR/docker.sock).
#
# It never touches another daemon: its own socket, pid file, exec and data roots, containerd namespace,
# no iptables rules and no docker0 bridge (containers use the host network or compose's own networks).
# Storage: overlay2, else vfs (much slower; said on stderr). Exit codes: 0 done, 1 not running (status),
# 2 usage, 3 no engine can be started here (the reason on stderr), 4 it did not come up (log tail shown).
set -euo pipefail

data_root=/var/lib/devenv-docker
exec_root=/run/devenv-docker
command=${1:-}
shift || true
while [ $# -gt 0 ]; do
  case "$1" in
    --data-root) data_root=${2:?--data-root needs a folder}; shift 2 ;;
    --exec-root) exec_root=${2:?--exec-root needs a folder}; shift 2 ;;
    *) echo "docker-engine: unknown option $1 (--data-root DIR, --exec-root DIR)" >&2; exit 2 ;;
  esac
done
socket=$exec_root/docker.sock
pidfile=$exec_root/dockerd.pid
log=$exec_root/dockerd.log
host=unix://$socket

say() { echo "docker-engine: $*" >&2; }
cannot() { say "$*"; exit 3; }

answers() { [ -S "$socket" ] && docker -H "$host" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# The pid of our dockerd (the one whose pid file and exec root are ours), or nothing.
our_dockerd() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  if ! gone "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--exec-root $exec_root "; then
    echo "$pid"
  fi
}

need_root() {
  [ "$(uname -s)" = Linux ] || cannot "not Linux: use Docker Desktop (with host networking for --runtime docker)"
  [ "$(id -u)" = 0 ] && return 0
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n -E bash "$0" "$command" --data-root "$data_root" --exec-root "$exec_root"
  fi
  cannot "a rootful dockerd needs root: run this as root or with passwordless sudo"
}

install_missing() {
  local packages=()
  command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
  command -v docker >/dev/null 2>&1 || packages+=(docker.io)
  command -v mmdebstrap >/dev/null 2>&1 || packages+=(mmdebstrap)
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    packages+=(docker-compose)
  fi
  [ ${#packages[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || cannot "no dockerd here and no apt-get to install it: install Docker Engine"
  say "installing ${packages[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null \
      || cannot "apt-get could not install ${packages[*]}"
  fi
}

gone() { [ ! -r "/proc/$1/stat" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# Start dockerd (detached: its own session) with a storage driver; 0 once it answers, 1 if it fails.
launch() {
  local driver=$1 waited=0
  mkdir -p "$data_root" "$exec_root"
  : >"$log"
  setsid --fork dockerd \
    --host "$host" --pidfile "$pidfile" --data-root "$data_root" --exec-root "$exec_root" \
    --storage-driver "$driver" --iptables=false --ip-masq=false --bridge=none \
    --containerd-namespace devenv --containerd-plugins-namespace devenv-plugins \
    </dev/null >>"$log" 2>&1
  while [ $waited -lt 300 ]; do  # 60 s
    answers && return 0
    grep -q 'level=fatal' "$log" && return 1
    [ $waited -gt 25 ] && [ -z "$(our_dockerd)" ] && return 1  # no dockerd of ours after 5 s
    sleep 0.2
    waited=$((waited + 1))
  done
  return 1
}

# dockerd leaves its default network namespace mounted in the exec root: unmount it, so the folder can go.
release_netns() {
  if mountpoint -q "$exec_root/netns/default" 2>/dev/null; then umount "$exec_root/netns/default" || true; fi
}

stop_engine() {
  local pid containerd waited=0
  pid=$(our_dockerd)
  if [ -z "$pid" ]; then
    say "not running ($host)"
    rm -f "$socket"
    release_netns
    return 0
  fi
  containerd=$(pgrep -P "$pid" -x containerd || true)  # the containerd it supervises, if any
  kill -TERM "$pid"
  while ! gone "$pid" && [ $waited -lt 300 ]; do  # up to 60 s: it stops its containers first
    sleep 0.2
    waited=$((waited + 1))
  done
  if ! gone "$pid"; then
    say "dockerd (pid $pid) ignored SIGTERM for 60 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -n "$containerd" ] && ! gone "$containerd"; then
    kill -TERM "$containerd" 2>/dev/null || true
  fi
  rm -f "$socket" "$pidfile"
  release_netns
  say "stopped ($host)"
}

case "$command" in
  start)
    need_root
    if answers; then
      say "already running ($host), started earlier by this script"
      echo "DOCKER_HOST=$host"
      exit 0
    fi
    [ -z "$(our_dockerd)" ] || cannot "a dockerd with this exec root runs but does not answer: scripts/docker-engine.sh stop"
    install_missing
    if launch overlay2; then
      driver=overlay2
    else
      say "overlay2 did not work here: $(grep -m1 -iE 'level=(error|fatal)' "$log" | cut -c1-300)"
      say "falling back to the vfs storage driver (much slower: every layer is a full copy)"
      stop_engine
      launch vfs || { tail -n 20 "$log" >&2; say "dockerd did not come up (log: $log)"; exit 4; }
      driver=vfs
    fi
    say "dockerd $(docker -H "$host" version --format '{{.Server.Version}}') answers on $host (storage driver $driver, data root $data_root, log $log)"
    echo "DOCKER_HOST=$host"
    ;;
  stop)
    need_root
    stop_engine
    ;;
  status)
    need_root
    if answers; then
      say "running: dockerd $(docker -H "$host" version --format '{{.Server.Version}}'), storage driver $(docker -H "$host" info --format '{{.Driver}}')"
      echo "DOCKER_HOST=$host"
      exit 0
    fi
    say "not running ($host)"
    exit 1
    ;;
  *)
    echo "usage: scripts/docker-engine.sh start|stop|status [--data-root DIR] [--exec-root DIR]" >&2
    exit 2
    ;;
esac
