"""Password hashing (argon2id) and AES-GCM encryption of exchange secrets with a key ring."""

from __future__ import annotations

import base64
import math
import os
import re
from collections import Counter

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class ConfigurationError(RuntimeError):
    """Start-up cannot go on with this configuration; the message says what to change."""


class Argon2PasswordHasher:
    """argon2id with parameters sized for an interactive login on a small server."""

    def __init__(self, time_cost: int = 2, memory_cost: int = 19_456, parallelism: int = 1) -> None:
        self._hasher = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """Parse 'id:base64key[,id:base64key...]'; the first entry is the current key."""
    ring: dict[str, bytes] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise ConfigurationError("master keys must look like 'id:base64key,...'")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ConfigurationError(f"master key {key_id!r} is not valid base64") from None
        if len(key) != 32:
            raise ConfigurationError(f"master key {key_id!r} must be 32 bytes (AES-256)")
        if key_id in ring:
            # The later entry would silently replace the earlier, and secrets sealed under
            # the lost key could no longer be opened.
            raise ConfigurationError(
                f"master key id {key_id!r} appears twice in TRADELEDGER_MASTER_KEYS")
        ring[key_id] = key
    if not ring:
        raise ConfigurationError("no master key configured (TRADELEDGER_MASTER_KEYS)")
    return ring


MIN_JWT_SECRET_CHARS = 32
MIN_JWT_SECRET_BITS = 128
# Words of the documented examples and of the usual "fill me in" values.
_PLACEHOLDER = re.compile(r"(?i)replace|change[-_ ]?me|example|placeholder|your[-_ ]?secret|"
                          r"secret[-_ ]?key|long[-_ ]?random")


def estimated_bits(text: str) -> float:
    """Estimate the entropy of `text` from its character frequencies (Shannon, in bits)."""
    if not text:
        return 0.0
    counts = Counter(text)
    per_char = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return per_char * len(text)


def check_jwt_secret(secret: str, setting: str = "TRADELEDGER_JWT_SECRET") -> None:
    """Refuse a short, placeholder or low-entropy signing secret, naming the setting.

    Account ids derive from emails, so whoever can sign a token can act as any user.
    """
    if len(secret) < MIN_JWT_SECRET_CHARS:
        raise ConfigurationError(f"{setting} must be at least {MIN_JWT_SECRET_CHARS} characters")
    if _PLACEHOLDER.search(secret):
        raise ConfigurationError(
            f"{setting} is still a placeholder; generate one with "
            "python3 -c \"import secrets;print(secrets.token_urlsafe(48))\"")
    if len(set(secret)) < 16 or estimated_bits(secret) < MIN_JWT_SECRET_BITS:
        raise ConfigurationError(
            f"{setting} is not random enough (about {estimated_bits(secret):.0f} bits, "
            f"need {MIN_JWT_SECRET_BITS}); generate one with "
            "python3 -c \"import secrets;print(secrets.token_urlsafe(48))\"")


class AesGcmCipher:
    """AES-256-GCM; the associated data binds each ciphertext to its account and field."""

    def __init__(self, key_ring: dict[str, bytes]) -> None:
        if not key_ring:
            raise ConfigurationError("the key ring is empty")
        self._ring = dict(key_ring)
        self._current = next(iter(key_ring))

    @classmethod
    def from_spec(cls, spec: str) -> AesGcmCipher:
        return cls(parse_key_ring(spec))

    @property
    def current_key_id(self) -> str:
        return self._current

    def encrypt(self, plaintext: str, associated_data: str) -> tuple[str, str]:
        nonce = os.urandom(12)
        sealed = AESGCM(self._ring[self._current]).encrypt(
            nonce, plaintext.encode(), associated_data.encode()
        )
        return base64.b64encode(nonce + sealed).decode(), self._current

    def decrypt(self, ciphertext: str, key_id: str, associated_data: str) -> str:
        try:
            key = self._ring[key_id]
        except KeyError:
            raise ConfigurationError(
                f"master key {key_id!r} is not in the key ring; keep retired keys until "
                "`tradeledger keys rotate` has re-encrypted every secret"
            ) from None
        raw = base64.b64decode(ciphertext)
        return AESGCM(key).decrypt(raw[:12], raw[12:], associated_data.encode()).decode()

    def __repr__(self) -> str:
        return f"AesGcmCipher(keys={list(self._ring)}, current={self._current!r})"
