"""Make a local CA and a TLS certificate for the `redis` service into a folder (compose's one-shot
`redis-tls` job): ElastiCache encrypts in transit, so the local Redis does too and the app speaks
`rediss://` with REDIS_CA_FILE. Idempotent: existing files are kept. Local use only.

    python make_redis_certs.py /tls [hostname ...]
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_FOR = datetime.timedelta(days=825)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make(folder: Path, hostnames: list[str]) -> None:
    if all((folder / name).is_file() for name in ("ca.crt", "redis.crt", "redis.key")):
        return
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("devenv local CA"))
        .issuer_name(_name("devenv local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hostnames[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes(ca.public_bytes(pem))
    (folder / "redis.crt").write_bytes(cert.public_bytes(pem))
    (folder / "redis.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for path in folder.iterdir():
        path.chmod(0o644)  # redis (uid 999) and the app (uid 10001) read them from a shared volume


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(
            "usage: python make_redis_certs.py FOLDER [HOSTNAME ...]  (default hostnames: redis localhost)"
        )
    make(Path(sys.argv[1]), sys.argv[2:] or ["redis", "localhost"])
