"""The devenv CA and server certificate, proven by a real redis-server serving TLS with them."""

from __future__ import annotations

import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509

from devenv.services.redis import tls_args
from devenv.services.tls import TlsFiles, ensure_tls_files, main
from tests.ports import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def tls_files(tls_dir: Path) -> TlsFiles:
    return ensure_tls_files(tls_dir)


@pytest.fixture(scope="module")
def tls_redis_port(tls_files: TlsFiles, tls_dir: Path) -> Iterator[int]:
    port = free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tls_dir)]
    server = subprocess.Popen(
        [*argv, "--port", "0", *tls_args(tls_files, port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                redis.Redis.from_url(f"rediss://127.0.0.1:{port}", ssl_ca_certs=str(tls_files.ca_cert)).ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"redis-server with TLS did not start: {output[-2000:]}")
                time.sleep(0.05)
        yield port
    finally:
        server.kill()
        server.wait()


def test_files_exist_with_private_keys(tls_files: TlsFiles, tls_dir: Path) -> None:
    assert tls_files.ca_cert == tls_dir / "ca.pem"
    assert tls_files.server_cert == tls_dir / "server.pem"
    assert tls_files.server_key == tls_dir / "server-key.pem"
    for key in (tls_files.server_key, tls_dir / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_valid_files_are_reused(tls_files: TlsFiles) -> None:
    before = {p: p.read_bytes() for p in (tls_files.ca_cert, tls_files.server_cert, tls_files.server_key)}
    again = ensure_tls_files(tls_files.ca_cert.parent)
    assert again == tls_files
    assert {p: p.read_bytes() for p in before} == before


def test_server_cert_from_another_ca_is_reissued(tmp_path: Path, tls_files: TlsFiles) -> None:
    first = ensure_tls_files(tmp_path)
    shutil.copy(tls_files.server_cert, first.server_cert)  # signed by a different CA
    shutil.copy(tls_files.server_key, first.server_key)
    ensure_tls_files(tmp_path)
    assert first.server_cert.read_bytes() != tls_files.server_cert.read_bytes()


def test_rediss_with_the_ca_pings(tls_files: TlsFiles, tls_redis_port: int) -> None:
    client = redis.Redis.from_url(f"rediss://127.0.0.1:{tls_redis_port}", ssl_ca_certs=str(tls_files.ca_cert))
    assert client.ping() is True
    client.set("tls-key", "v")
    assert client.get("tls-key") == b"v"


def test_rediss_to_localhost_name_verifies(tls_files: TlsFiles, tls_redis_port: int) -> None:
    client = redis.Redis.from_url(f"rediss://localhost:{tls_redis_port}", ssl_ca_certs=str(tls_files.ca_cert))
    assert client.ping() is True


def test_rediss_without_the_ca_fails_verification(tls_redis_port: int) -> None:
    client = redis.Redis.from_url(f"rediss://127.0.0.1:{tls_redis_port}")
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        client.ping()


def test_plain_redis_is_not_served(tls_files: TlsFiles, tls_redis_port: int) -> None:
    """As ElastiCache with in-transit encryption: the server itself says it listens on the TLS port only."""
    client = redis.Redis.from_url(f"rediss://127.0.0.1:{tls_redis_port}", ssl_ca_certs=str(tls_files.ca_cert))
    assert client.config_get("port") == {"port": "0"}
    assert client.config_get("tls-port") == {"tls-port": str(tls_redis_port)}
    assert client.config_get("tls-auth-clients") == {"tls-auth-clients": "no"}  # no client certificates


def test_the_command_covers_extra_host_names_and_shares_all_but_the_ca_key(tmp_path: Path) -> None:
    """compose's `redis-tls` job: a certificate for the service's name, readable by the containers' users."""
    assert main([str(tmp_path), "--host", "redis", "--shared"]) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "redis"}
    assert stat.S_IMODE((tmp_path / "server-key.pem").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600
    before = (tmp_path / "server.pem").read_bytes()
    assert main([str(tmp_path), "--host", "redis"]) == 0
    assert (tmp_path / "server.pem").read_bytes() == before  # a valid certificate is kept
