"""Client tokens (generated, hashed) and upstream API keys (encrypted at rest).

Token format (upstream contract): `sk-` + the 16 bytes of a UUIDv7 in unpadded base64url (22 chars).
Only the SHA-256 of a token is stored. Upstream keys are encrypted with AES-256-GCM under a key derived
by HKDF-SHA256 from ENCRYPTION_KEY (any secret string of at least 32 characters, e.g. a generated secret).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_PATTERN = re.compile(r"^sk-[A-Za-z0-9_-]{22}$")
CIPHER_PREFIX = "v1:"


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7)."""
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


def new_token() -> str:
    return "sk-" + base64.urlsafe_b64encode(uuid7().bytes).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """What listings show instead of a token: enough to recognise it, not to use it."""
    return f"{token[:5]}...{token[-4:]}"


def obfuscate(secret: str) -> str:
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:4]}...{secret[-4:]}"


class DecryptionError(Exception):
    """Stored ciphertext does not open with this ENCRYPTION_KEY."""


class KeyBox:
    """Encrypts and decrypts upstream API keys."""

    def __init__(self, secret: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"llmproxy", info=b"upstream-api-keys"
        ).derive(secret.encode())
        self._aead = AESGCM(derived)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return CIPHER_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str) -> str:
        if not ciphertext.startswith(CIPHER_PREFIX):
            raise DecryptionError("not an encrypted value")
        raw = base64.urlsafe_b64decode(ciphertext[len(CIPHER_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except InvalidTag:
            raise DecryptionError("ENCRYPTION_KEY does not open this value") from None
