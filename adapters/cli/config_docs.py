"""Render the configuration reference (docs/configuration.md) from the Settings class itself."""

from __future__ import annotations

from adapters.platform.settings import Settings

HEADER = """# Configuration reference

Every setting is an environment variable (or a line in `.env`). This page is generated from
`adapters/platform/settings.py` by `tradeledger config-docs > docs/configuration.md`; a test
keeps it in sync. **Embedded** is what `tradeledger up` does with nothing set; **production**
is what docker-compose.yml sets.

| variable | default | embedded | production | meaning |
|---|---|---|---|---|
"""

PRODUCTION = {
    "database_url": "required", "kafka_bootstrap_servers": "required",
    "master_keys": "required", "jwt_secret": "required", "log_json": "true",
}
EMBEDDED = {
    "database_url": "unset: embedded Postgres in DATA_DIR/postgres",
    "kafka_bootstrap_servers": "unset: embedded Tansu broker (in memory)",
    "master_keys": "unset: generated into DATA_DIR/secrets.json",
    "jwt_secret": "unset: generated into DATA_DIR/secrets.json",
    "paper_exchange_url": "unset: paper exchange started by `up`",
}


def env_name(field: str) -> str:
    return "TRADELEDGER_" + field.upper()


def render() -> str:
    lines = [HEADER]
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "(home)/.tradeledger" if name == "data_dir" else (
            "unset" if default is None else str(default))
        meaning = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{env_name(name)}` | `{shown}` | {EMBEDDED.get(name, 'default')} | "
                     f"{PRODUCTION.get(name, 'default')} | {meaning} |\n")
    lines.append("\nSecrets (`MASTER_KEYS`, `JWT_SECRET`, `DATABASE_URL` with a password) are "
                 "never logged; `MASTER_KEYS` is `id:base64(32 bytes)[,id:base64...]`, "
                 "the first is current. Rotate: put a new key first, keep the old after it, run "
                 "`tradeledger keys rotate`, then drop the old key.\n")
    return "".join(lines)


def register(subparsers: object) -> None:
    parser = subparsers.add_parser(  # type: ignore[attr-defined]
        "config-docs", help="print the configuration reference (Markdown)")
    parser.set_defaults(func=lambda _args: print(render(), end="") or 0)
