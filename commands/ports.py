"""The ports the write side needs; adapters/ implements them."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from domain.symbols import SymbolRules


class SymbolCatalog(Protocol):
    """Trading rules and a reference price per symbol."""

    def rules(self, symbol: str) -> SymbolRules | None: ...

    def reference_price(self, symbol: str) -> Decimal | None: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class SecretCipher(Protocol):
    """Authenticated encryption with a key ring: the key id travels with each ciphertext."""

    @property
    def current_key_id(self) -> str: ...

    def encrypt(self, plaintext: str, associated_data: str) -> tuple[str, str]:
        """Return (ciphertext, key id)."""
        ...

    def decrypt(self, ciphertext: str, key_id: str, associated_data: str) -> str: ...
