"""The Account aggregate: a trader's identity and the exchange keys connected to it.

Only ciphertext and the id of the master key that made it are ever stored; the clear
secret never enters an event.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ExchangeKeysMissing, ValidationFailed

ACCOUNT_NAMESPACE = uuid5(NAMESPACE_URL, "https://tradeledger.dev/account")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXCHANGE_ENVIRONMENTS = ("paper", "testnet", "live")


def normalize_email(email: str) -> str:
    """Lower-case and trim an email address, refusing anything that is not one."""
    normalized = email.strip().lower()
    if len(normalized) > 254 or not _EMAIL.match(normalized):
        raise ValidationFailed(f"{email!r} is not a valid email address", field="email")
    return normalized


def account_id_for(email: str) -> UUID:
    """Derive the account id from the normalized email, so a second registration collides."""
    return uuid5(ACCOUNT_NAMESPACE, normalize_email(email))


def mask_api_key(api_key: str) -> str:
    """Show only the ends of an API key: enough to recognise it, too little to use it."""
    if len(api_key) <= 8:
        return "*" * len(api_key)
    return f"{api_key[:4]}{'*' * 8}{api_key[-4:]}"


class Account(Aggregate):
    """A registered trader."""

    @staticmethod
    def create_id(email: str, **_: object) -> UUID:
        return account_id_for(email)

    @event("AccountRegistered")
    def __init__(self, email: str, password_hash: str) -> None:
        self.email = email
        self.password_hash = password_hash
        self.api_key_ciphertext: str | None = None
        self.secret_ciphertext: str | None = None
        self.key_id: str | None = None
        self.api_key_hint: str | None = None
        self.exchange_environment: str | None = None
        self._keys_rejection: dict[str, Any] | None = None

    @property
    def has_exchange_keys(self) -> bool:
        return self.secret_ciphertext is not None

    def connect_exchange_keys(
        self,
        api_key_ciphertext: str,
        secret_ciphertext: str,
        key_id: str,
        api_key_hint: str,
        environment: str,
    ) -> None:
        """Connect keys, or rotate to new ones when keys are already connected."""
        if environment not in EXCHANGE_ENVIRONMENTS:
            raise ValidationFailed(
                f"environment must be one of {', '.join(EXCHANGE_ENVIRONMENTS)}",
                field="environment",
            )
        if self.has_exchange_keys:
            self._keys_rotated(api_key_ciphertext, secret_ciphertext, key_id, api_key_hint,
                               environment)
        else:
            self._keys_connected(api_key_ciphertext, secret_ciphertext, key_id, api_key_hint,
                                 environment)

    def reencrypt_exchange_keys(
        self, api_key_ciphertext: str, secret_ciphertext: str, key_id: str
    ) -> None:
        """Record the same keys encrypted under another master key (master-key rotation)."""
        if not self.has_exchange_keys:
            raise ExchangeKeysMissing("account has no exchange keys to re-encrypt")
        if key_id == self.key_id:
            return
        self._keys_reencrypted(api_key_ciphertext, secret_ciphertext, key_id)

    def revoke_exchange_keys(self) -> None:
        """Forget the connected keys; revoking twice is a no-op."""
        if not self.has_exchange_keys:
            return
        self._keys_revoked()

    @property
    def keys_rejection(self) -> dict[str, Any] | None:
        """The exchange's final refusal of the connected keys: {code, reason, environment}."""
        # getattr: snapshots taken before this attribute existed do not carry it.
        rejection: dict[str, Any] | None = getattr(self, "_keys_rejection", None)
        return rejection

    def reject_exchange_keys(self, code: int, reason: str) -> bool:
        """Record that the exchange refuses the connected keys; False if already recorded."""
        if not self.has_exchange_keys:
            raise ExchangeKeysMissing("account has no exchange keys to reject")
        current = self.keys_rejection
        if current is not None and (current["code"], current["reason"]) == (code, reason):
            return False
        self._keys_rejected(code, reason, self.exchange_environment or "paper")
        return True

    def change_password(self, password_hash: str) -> None:
        self._password_changed(password_hash)

    @event("ExchangeKeysConnected")
    def _keys_connected(
        self,
        api_key_ciphertext: str,
        secret_ciphertext: str,
        key_id: str,
        api_key_hint: str,
        environment: str,
    ) -> None:
        self._set_keys(api_key_ciphertext, secret_ciphertext, key_id)
        self.api_key_hint = api_key_hint
        self.exchange_environment = environment
        self._keys_rejection = None

    @event("ExchangeKeysRotated")
    def _keys_rotated(
        self,
        api_key_ciphertext: str,
        secret_ciphertext: str,
        key_id: str,
        api_key_hint: str,
        environment: str,
    ) -> None:
        self._set_keys(api_key_ciphertext, secret_ciphertext, key_id)
        self.api_key_hint = api_key_hint
        self.exchange_environment = environment
        self._keys_rejection = None

    @event("ExchangeKeysReencrypted")
    def _keys_reencrypted(
        self, api_key_ciphertext: str, secret_ciphertext: str, key_id: str
    ) -> None:
        self._set_keys(api_key_ciphertext, secret_ciphertext, key_id)

    @event("ExchangeKeysRevoked")
    def _keys_revoked(self) -> None:
        self.api_key_ciphertext = None
        self.secret_ciphertext = None
        self.key_id = None
        self.api_key_hint = None
        self.exchange_environment = None
        self._keys_rejection = None

    @event("ExchangeKeysRejected")
    def _keys_rejected(self, code: int, reason: str, environment: str) -> None:
        self._keys_rejection = {"code": code, "reason": reason, "environment": environment}

    @event("AccountPasswordChanged")
    def _password_changed(self, password_hash: str) -> None:
        self.password_hash = password_hash

    def _set_keys(self, api_key_ciphertext: str, secret_ciphertext: str, key_id: str) -> None:
        self.api_key_ciphertext = api_key_ciphertext
        self.secret_ciphertext = secret_ciphertext
        self.key_id = key_id
