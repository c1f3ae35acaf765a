"""The projector process: read models and the audit chain, kept up to date from Kafka."""

from __future__ import annotations

import psycopg

from adapters.kafka.consumer import ConsumerRunner
from adapters.kafka.embedded import broker_bootstrap
from adapters.platform.runtime import consumer_process, open_runtime
from adapters.postgres.projector import Projector


def run_projector(instance: int | None = None, instances: int | None = None,
                  batch_size: int = 500, audit: bool = True) -> int:
    """Run one projector replica until SIGTERM/SIGINT."""
    with consumer_process("projector", instance, instances) as (settings, stop, index, count):
        with open_runtime(settings, need_master=False) as rt, \
                broker_bootstrap(settings) as bootstrap:
            projector = Projector(settings.database_schema, audit=audit)
            with psycopg.connect(rt.database_url) as conn, conn.transaction():
                projector.setup(conn)
            runner = ConsumerRunner(
                database_url=rt.database_url, schema=settings.database_schema,
                bootstrap_servers=bootstrap, topic=settings.kafka_topic,
                handler=projector, instance=index, instances=count,
                batch_size=batch_size)
            try:
                runner.run(stop)
            finally:
                runner.close()
    return 0
