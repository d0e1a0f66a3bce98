"""The devenv certificate authority and a server certificate for localhost / 127.0.0.1.

Local services that AWS serves over TLS (ElastiCache with in-transit encryption: `rediss://`) serve TLS
here too, with a certificate signed by a CA that only this state directory trusts. Clients verify it with
`ca.pem`, so certificate checking is exercised locally instead of being switched off.

The compose stack's `redis-tls` job makes its certificates with the same code, for the service's host name:

    python -m devenv.services.tls FOLDER [--host NAME ...] [--shared]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"

SERVER_DNS_NAMES = ("localhost",)
SERVER_IP_ADDRESSES = ("127.0.0.1", "::1")
CA_VALIDITY = datetime.timedelta(days=3650)
SERVER_VALIDITY = datetime.timedelta(days=825)
# Reissue a certificate this close to its expiry, so a long-lived state directory never serves an expired one.
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA certificate and the server's certificate and key live (PEM)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_tls_files(directory: Path, dns_names: Sequence[str] = SERVER_DNS_NAMES) -> TlsFiles:
    """Create the devenv CA and a server certificate for `dns_names` and the loopback addresses under
    `directory`, or reuse valid ones.

    Keys are written 0600. The CA is reused while valid; the server certificate is reissued when it is
    missing, near expiry, not signed by the current CA, or does not cover the names and 127.0.0.1.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = directory / CA_FILE, directory / CA_KEY_FILE
    server_cert_path, server_key_path = directory / SERVER_CERT_FILE, directory / SERVER_KEY_FILE

    ca = _load_valid_ca(ca_cert_path, ca_key_path)
    if ca is None:
        ca = _create_ca()
        _write_key(ca_key_path, ca[1])
        _write_cert(ca_cert_path, ca[0])
        server_cert_path.unlink(missing_ok=True)
    ca_cert, ca_key = ca

    if not _server_cert_is_valid(server_cert_path, server_key_path, ca_cert, dns_names):
        server_cert, server_key = _create_server_cert(ca_cert, ca_key, dns_names)
        _write_key(server_key_path, server_key)
        _write_cert(server_cert_path, server_cert)
    return TlsFiles(ca_cert=ca_cert_path, server_cert=server_cert_path, server_key=server_key_path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _load_valid_ca(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return None
    return cert, key


def _server_cert_is_valid(
    cert_path: Path, key_path: Path, ca_cert: x509.Certificate, dns_names: Sequence[str]
) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    covered = set(names.get_values_for_type(x509.DNSName)) >= set(dns_names) and {
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    } >= set(SERVER_IP_ADDRESSES)
    return (
        covered
        and key.public_key() == cert.public_key()
        and cert.not_valid_after_utc - RENEW_BEFORE >= _now()
    )


def _create_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devenv local CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _create_server_cert(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, dns_names: Sequence[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IP_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only, never briefly world-readable."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Make (or keep) the CA and a server certificate in a folder: compose's `redis-tls` job."""
    parser = argparse.ArgumentParser(prog="python -m devenv.services.tls", description=main.__doc__)
    parser.add_argument("folder", type=Path, help="where ca.pem, server.pem and server-key.pem go")
    parser.add_argument(
        "--host", action="append", default=[], help="a DNS name the server certificate covers (repeatable)"
    )
    parser.add_argument(
        "--shared",
        action="store_true",
        help="make the certificates and the server key readable by every user (a volume that containers of "
        "other users read); the CA key stays private",
    )
    args = parser.parse_args(argv)
    files = ensure_tls_files(args.folder, tuple(dict.fromkeys([*SERVER_DNS_NAMES, *args.host])))
    if args.shared:
        for path in (files.ca_cert, files.server_cert, files.server_key):
            path.chmod(0o644)
    print(f"{files.ca_cert}, {files.server_cert}, {files.server_key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
