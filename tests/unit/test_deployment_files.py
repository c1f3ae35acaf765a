"""docker-compose.yml, .env.example and the configuration reference match the settings class."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.cli.config_docs import env_name, render
from adapters.platform.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KNOWN = {env_name(name) for name in Settings.model_fields}


def compose() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def test_every_tradeledger_variable_in_compose_is_read_by_settings() -> None:
    used = set(re.findall(r"\b(TRADELEDGER_[A-Z_]+)\s*:", compose()))
    assert used, "compose sets no TRADELEDGER_ variables"
    assert used <= KNOWN, f"compose sets variables nothing reads: {sorted(used - KNOWN)}"


def test_env_example_names_only_real_settings() -> None:
    names = set(re.findall(r"^(TRADELEDGER_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert names and names <= KNOWN


@pytest.mark.parametrize("service", ["postgres", "kafka", "api", "relay", "worker", "projector",
                                     "dashboard", "paper-exchange"])
def test_compose_has_every_service(service: str) -> None:
    assert re.search(rf"^  {re.escape(service)}:\s*$", compose(), re.M)


def test_compose_uses_official_postgres_and_apache_kafka_in_kraft_mode() -> None:
    text = compose()
    assert re.search(r"image: postgres:\d+", text)
    assert re.search(r"image: apache/kafka:[\d.]+", text)
    assert "KAFKA_PROCESS_ROLES: broker,controller" in text


def test_kafka_keeps_its_log_on_the_mounted_volume() -> None:
    # apache/kafka's KRaft default log dir (/tmp/kraft-combined-logs) is not the volume.
    text = compose()
    mount = re.search(r"volumes: \[kafkadata:(\S+)\]", text)
    log_dirs = re.search(r"KAFKA_LOG_DIRS: (\S+)", text)
    assert mount and log_dirs, "the kafka service needs a volume and KAFKA_LOG_DIRS"
    assert log_dirs.group(1) == mount.group(1)


def test_compose_service_commands_are_real_subcommands() -> None:
    from adapters.cli import build_parser

    parser = build_parser()
    subcommands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for command in re.findall(r'command: \["([a-z-]+)"', compose()):
        assert command in subcommands, command


def test_configuration_reference_is_up_to_date() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render()


def test_live_trading_is_never_the_default() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.exchange == "paper" and settings.allow_live_trading is False


def test_settings_survive_the_trip_through_a_child_process_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from adapters.platform.settings import settings_env

    original = Settings(_env_file=None, data_dir=tmp_path, database_url="postgresql://x/y",  # type: ignore[call-arg]
                        master_keys="k1:abc", jwt_secret="s" * 40, allow_live_trading=True,
                        instances=3, kafka_partitions=12)
    for name, value in settings_env(original).items():
        monkeypatch.setenv(name, value)
    again = Settings(_env_file=None)  # type: ignore[call-arg]
    assert again.model_dump() == original.model_dump()
    assert again.jwt_secret is not None and again.jwt_secret.get_secret_value() == "s" * 40


def _service_block(name: str) -> str:
    text = compose()
    start = re.search(rf"^  {re.escape(name)}:\s*$", text, re.M)
    assert start
    rest = text[start.end():]
    end = re.search(r"^  [a-z-]+:\s*$|^[a-z]", rest, re.M)
    return rest[:end.start()] if end else rest


def test_compose_gives_each_secret_only_to_the_processes_that_use_it() -> None:
    anchor = compose().split("services:", 1)[0]
    assert "MASTER_KEYS" not in anchor and "JWT_SECRET" not in anchor
    users = {"TRADELEDGER_JWT_SECRET": {"api"},
             "TRADELEDGER_MASTER_KEYS": {"api", "worker"},
             "TRADELEDGER_PAPER_ADMIN_TOKEN": {"paper-exchange", "worker"}}
    for service in ("api", "relay", "worker", "projector", "dashboard", "paper-exchange"):
        block = _service_block(service)
        for secret, allowed in users.items():
            assert (secret in block) == (service in allowed), (service, secret)


def test_up_hands_secrets_only_to_the_children_that_use_them() -> None:
    from adapters.processes.supervisor import env_for

    env = {"TRADELEDGER_JWT_SECRET": "j", "TRADELEDGER_MASTER_KEYS": "m", "PATH": "/bin"}
    assert env_for("api", env) == env
    assert env_for("worker", env) == {"TRADELEDGER_MASTER_KEYS": "m", "PATH": "/bin"}
    for name in ("relay", "projector", "dashboard", "paper-exchange"):
        assert env_for(name, env) == {"PATH": "/bin"}
