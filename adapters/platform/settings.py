"""One settings class for every process. Defaults are the embedded mode; live trading never is.

Every field is read from the environment with the prefix TRADELEDGER_ (for example
TRADELEDGER_DATABASE_URL) or from a `.env` file. docs/configuration.md lists them all.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """TradeLedger configuration."""

    model_config = SettingsConfigDict(env_prefix="TRADELEDGER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path.home() / ".tradeledger",
                           description="Where the embedded servers and generated secrets live.")
    database_url: str | None = Field(default=None,
                                     description="Postgres URL; unset = embedded Postgres.")
    database_schema: str = Field(default="tradeledger", description="Postgres schema used.")
    database_pool_size: int = Field(default=10, ge=1, le=200)
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset = embedded Tansu broker.")
    kafka_topic: str = Field(
        default="tradeledger.events.v2",
        description="The topic carrying every event, keyed by account id (v2: the old "
                    "`tradeledger.events` was keyed by aggregate id; docs/event-bus.md "
                    "says how consumers move over).")
    kafka_partitions: int = Field(default=6, ge=1, le=1024)
    relay_linger_ms: float = Field(
        default=10.0, ge=0, le=1000,
        description="Under steady appends the relay publishes at most once per this many ms "
                    "(more events per batch, less CPU); an append after a quiet spell goes "
                    "out at once.")
    exchange: Literal["paper", "testnet", "live"] = Field(
        default="paper", description="Which exchange the worker trades on.")
    allow_live_trading: bool = Field(
        default=False, description="Must be true as well as exchange=live to trade real money.")
    order_transport: Literal["ws", "rest"] = Field(
        default="ws",
        description="How the worker places, cancels and queries orders: ws = one WS-API "
                    "connection (REST while it is down), rest = REST only.")
    paper_exchange_url: str | None = Field(
        default=None, description="Base URL of a running paper exchange; unset = start one.")
    paper_exchange_port: int = 0
    paper_admin_token: SecretStr | None = Field(
        default=None,
        description="Token of the paper exchange's /admin/* controls (header "
        "X-TradeLedger-Admin-Token): the exchange requires it when set, and the worker sends it "
        "to issue new accounts' paper keys. Set it whenever the exchange is bound beyond "
        "loopback (docker-compose); unset = loopback callers only.")
    exchange_info_refresh_seconds: float = Field(
        default=300.0, ge=5, le=86400,
        description="How often the API reloads the exchange's exchangeInfo (symbol status and "
                    "filters it validates orders with); a -1013/-1111 refusal reloads at once.")
    master_keys: SecretStr | None = Field(
        default=None,
        description="Key ring for exchange secrets: 'id:base64key[,id:base64key...]', the first "
        "is current. Unset in embedded mode = generated and kept in data_dir.")
    jwt_secret: SecretStr | None = Field(
        default=None, description="JWT signing secret; required outside the embedded mode.")
    jwt_issuer: str = "tradeledger"
    jwt_audience: str = "tradeledger-api"
    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    session_max_days: int = Field(
        default=30, ge=1, le=365,
        description="Absolute lifetime of a sign-in: refreshing never extends it past this.")
    auth_requests_per_ip_per_minute: int = Field(
        default=60, ge=1,
        description="Registrations and token refreshes one client address may make per "
                    "minute (per API process).")
    streams_per_user: int = Field(default=8, ge=1, le=1000,
                                  description="Open SSE streams one account may hold.")
    streams_total: int = Field(default=2000, ge=1,
                               description="Open SSE streams one API process serves.")
    market_requests_per_ip_per_second: float = Field(
        default=20.0, gt=0,
        description="Market-data requests (klines, ticker) one client address may make per "
                    "second; answers are cached, so the exchange sees far fewer.")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="The Secure flag of auth cookies: auto = always, except plain HTTP to "
                    "localhost (development); set always behind a TLS proxy.")
    audit_check_interval_seconds: float = Field(
        default=600.0, ge=0,
        description="How often one API process re-verifies the whole audit chain in the "
                    "background (0 = never; `tradeledger audit verify` does it on demand).")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dashboard_port: int = 8050
    api_url: str | None = Field(default=None, description="Where the dashboard finds the API.")
    instances: int = Field(default=1, ge=1, le=1024,
                           description="Replicas of this consumer process (worker, projector).")
    instance: int | None = Field(
        default=None, ge=0,
        description="This replica's index; unset = claim a free one with an advisory lock.")
    cors_origins: str = Field(default="", description="Comma-separated origins the API allows.")
    metrics_port: int | None = Field(
        default=None, description="Serve this process's Prometheus metrics, /health and "
        "/ready on this port.")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the metrics port binds to (loopback: only this machine scrapes).")
    log_json: bool = False
    log_level: str = "INFO"
    order_rate_limit_per_second: float = Field(default=50.0, gt=0)

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_broker(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "secrets.json"


def settings_env(settings: Settings) -> dict[str, str]:
    """The TRADELEDGER_* environment that makes a child process see these settings
    (secrets included, so it goes to child processes only, never to a log)."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"TRADELEDGER_{name.upper()}"] = str(value)
    return env


@lru_cache
def get_settings() -> Settings:
    """Build the settings once per process."""
    return Settings()


def load_or_create_embedded_secrets(settings: Settings) -> dict[str, str]:
    """Return the embedded mode's generated secrets, creating them (mode 0600) on first use."""
    path = settings.secrets_file
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "master_keys": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(48),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return data
