"""The composition root: the only place that decides which database, broker and exchange."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.binance.symbols import SymbolCatalogAdapter
from adapters.platform.crypto import AesGcmCipher, Argon2PasswordHasher, ConfigurationError
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


def resolve_secrets(settings: Settings) -> tuple[str, str]:
    """Return (master key ring spec, JWT secret); generate them only in the embedded mode."""
    master = settings.master_keys.get_secret_value() if settings.master_keys else None
    jwt_secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    if master and jwt_secret:
        return master, jwt_secret
    if not settings.embedded_database:
        missing = [n for n, v in (("TRADELEDGER_MASTER_KEYS", master),
                                  ("TRADELEDGER_JWT_SECRET", jwt_secret)) if not v]
        raise ConfigurationError(
            f"{' and '.join(missing)} must be set when TRADELEDGER_DATABASE_URL is set "
            "(only the embedded mode generates its own secrets)"
        )
    generated = load_or_create_embedded_secrets(settings)
    return master or generated["master_keys"], jwt_secret or generated["jwt_secret"]


def bootstrap(settings: Settings, database_url: str) -> Runtime:
    """Wire the write-side application to Postgres at `database_url`."""
    master_spec, jwt_secret = resolve_secrets(settings)
    if len(jwt_secret) < 32:
        raise ConfigurationError("TRADELEDGER_JWT_SECRET must be at least 32 characters")
    cipher = AesGcmCipher.from_spec(master_spec)
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
