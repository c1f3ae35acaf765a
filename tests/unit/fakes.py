"""In-memory fakes of the write side's ports, for tests without I/O."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal

from adapters.paper_exchange.markets import DEFAULT_MARKETS
from domain.symbols import SymbolRules


class FakeSymbols:
    def __init__(self, prices: dict[str, Decimal] | None = None) -> None:
        self._rules = {s: m.rules for s, m in DEFAULT_MARKETS.items()}
        self.prices = prices or {}

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol)

    def reference_price(self, symbol: str) -> Decimal | None:
        return self.prices.get(symbol)


class FakeHasher:
    def hash(self, password: str) -> str:
        return "fake$" + hashlib.sha256(password.encode()).hexdigest()

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == self.hash(password)


class FakeCipher:
    """Reversible, keyed 'encryption' that is obviously not the clear text."""

    def __init__(self, key_id: str = "k1") -> None:
        self.current_key_id = key_id

    def encrypt(self, plaintext: str, associated_data: str) -> tuple[str, str]:
        blob = f"{self.current_key_id}|{associated_data}|{plaintext}".encode()[::-1]
        return base64.b64encode(blob).decode(), self.current_key_id

    def decrypt(self, ciphertext: str, key_id: str, associated_data: str) -> str:
        kid, aad, text = base64.b64decode(ciphertext)[::-1].decode().split("|", 2)
        assert kid == key_id and aad == associated_data
        return text


def make_app(**prices: str):  # type: ignore[no-untyped-def]
    from commands.application import TradingApplication

    return TradingApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        symbols=FakeSymbols({k: Decimal(v) for k, v in prices.items()}),
        hasher=FakeHasher(),
        cipher=FakeCipher(),
    )
