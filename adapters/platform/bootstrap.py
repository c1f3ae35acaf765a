"""The composition root: the only place that decides which database, broker and exchange."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from adapters.binance.symbols import SymbolCatalogAdapter
from adapters.platform.crypto import (
    AesGcmCipher,
    Argon2PasswordHasher,
    ConfigurationError,
    check_jwt_secret,
)
from adapters.platform.settings import Settings, load_or_create_embedded_secrets
from adapters.postgres.store import ensure_schema, eventsourcing_env, schema_ddl_lock
from commands.application import TradingApplication

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a process needs, built once: settings resolved, application wired."""

    settings: Settings
    database_url: str
    app: TradingApplication
    symbols: SymbolCatalogAdapter
    cipher: AesGcmCipher
    jwt_secret: str

    def close(self) -> None:
        self.app.close()


def resolve_secrets(settings: Settings, *, need_jwt: bool = True,
                    need_master: bool = True) -> tuple[str, str]:
    """Return (master key ring spec, JWT secret); generate them only in the embedded mode.

    Outside it, a process gets only the secrets it uses (docker-compose hands each one
    only those): a secret it does not need may be unset and comes back as "".
    """
    master = settings.master_keys.get_secret_value() if settings.master_keys else None
    jwt_secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    if master and jwt_secret:
        return master, jwt_secret
    if not settings.embedded_database:
        missing = [n for n, v, needed in (("TRADELEDGER_MASTER_KEYS", master, need_master),
                                          ("TRADELEDGER_JWT_SECRET", jwt_secret, need_jwt))
                   if needed and not v]
        if missing:
            raise ConfigurationError(
                f"{' and '.join(missing)} must be set when TRADELEDGER_DATABASE_URL is set "
                "(only the embedded mode generates its own secrets)"
            )
        return master or "", jwt_secret or ""
    generated = load_or_create_embedded_secrets(settings)
    return master or generated["master_keys"], jwt_secret or generated["jwt_secret"]


class NoMasterKeys:
    """The cipher of a process given no master keys: it never touches exchange secrets."""

    current_key_id = ""

    def encrypt(self, plaintext: str, associated_data: str) -> tuple[str, str]:
        raise ConfigurationError("TRADELEDGER_MASTER_KEYS is not set for this process")

    def decrypt(self, ciphertext: str, key_id: str, associated_data: str) -> str:
        raise ConfigurationError("TRADELEDGER_MASTER_KEYS is not set for this process")


def bootstrap(settings: Settings, database_url: str, *, need_jwt: bool = False,
              need_master: bool = True) -> Runtime:
    """Wire the write-side application to Postgres at `database_url`.

    Only the API signs tokens (need_jwt=True); a JWT secret that is set is checked anyway.
    """
    master_spec, jwt_secret = resolve_secrets(settings, need_jwt=need_jwt,
                                              need_master=need_master)
    if jwt_secret or need_jwt:
        check_jwt_secret(jwt_secret)
    cipher: Any = AesGcmCipher.from_spec(master_spec) if master_spec else NoMasterKeys()
    symbols = SymbolCatalogAdapter()
    # Processes starting together on a fresh database would race on CREATE TABLE (the
    # catalog's unique type names); one advisory lock per schema serializes the DDL.
    with schema_ddl_lock(database_url, settings.database_schema):
        ensure_schema(database_url, settings.database_schema)
        app = TradingApplication(
            env=eventsourcing_env(database_url, settings.database_schema,
                                  settings.database_pool_size),
            symbols=symbols,
            hasher=Argon2PasswordHasher(),
            cipher=cipher,
        )
    return Runtime(settings=settings, database_url=database_url, app=app, symbols=symbols,
                   cipher=cipher, jwt_secret=jwt_secret)
