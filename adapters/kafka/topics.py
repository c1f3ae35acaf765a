"""Topic administration: create the events topic when it is missing."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


def admin_client(bootstrap_servers: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tradeledger-admin",
                            request_timeout_ms=10_000)


def topic_partitions(bootstrap_servers: str, topic: str,
                     admin: KafkaAdminClient | None = None) -> int | None:
    """Return the topic's partition count, or None when it does not exist (never creates it)."""
    client = admin or admin_client(bootstrap_servers)
    try:
        # Metadata for all topics: a request naming the topic would auto-create it on brokers
        # that allow that (Tansu does).
        metadata = client._get_cluster_metadata(topics=None).to_object()
    finally:
        if admin is None:
            client.close()
    for entry in metadata["topics"]:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return len(entry["partitions"])
    return None


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int,
                 *, recreate_if_different: bool = False) -> int:
    """Create `topic` with `partitions` if it is missing; return its partition count.

    With `recreate_if_different`, a topic with another partition count (for example one a
    client auto-created on a restarted broker) is deleted and created again.
    """
    existing = topic_partitions(bootstrap_servers, topic)
    if existing == partitions or (existing is not None and not recreate_if_different):
        return existing
    admin = admin_client(bootstrap_servers)
    try:
        if existing is not None:
            log.warning("topic %s has %d partitions, not %d: recreating it",
                        topic, existing, partitions)
            admin.delete_topics([topic])
            time.sleep(0.1)
        for attempt in range(20):
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
                log.info("created topic %s with %d partitions", topic, partitions)
                break
            except TopicAlreadyExistsError:
                if existing is None or attempt == 19:
                    break
                time.sleep(0.1)  # the delete has not finished yet
            except KafkaError as exc:
                if attempt == 19:
                    raise
                log.debug("create topic %s failed (%s); retrying", topic, exc)
                time.sleep(0.1)
    finally:
        admin.close()
    return topic_partitions(bootstrap_servers, topic) or partitions


def never_auto_create(client: Any) -> Any:
    """Make a kafka-python client ask for all topics' metadata, so it never auto-creates ours.

    A metadata request naming a topic creates it on brokers with auto-creation on (Tansu
    always; Apache Kafka by default) with the broker's default partition count, which would
    race the relay recreating the topic after a broker lost its data.
    """
    cluster = getattr(client, "_metadata", None)  # KafkaProducer
    if cluster is None:
        cluster = client._client.cluster  # KafkaConsumer
    cluster.need_all_topic_metadata = True
    return client
