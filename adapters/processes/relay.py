"""The relay process: the event store's notification log, published to Kafka in order."""

from __future__ import annotations

import sys

from adapters.kafka.embedded import broker_bootstrap
from adapters.kafka.relay import relay_from_runtime
from adapters.platform.runtime import open_runtime, start_process
from adapters.platform.settings import get_settings


def run_relay() -> int:
    """Run the relay until SIGTERM/SIGINT, with settings from the environment."""
    settings = get_settings()
    stop = start_process(settings)
    with open_runtime(settings, need_master=False) as runtime, \
            broker_bootstrap(settings) as bootstrap:
        relay_from_runtime(runtime, bootstrap).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(run_relay())
