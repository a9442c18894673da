"""Kafka clients built from the settings, and the start-up checks on topics.

Secrets go straight from ``SecretStr`` into the client options and nowhere else.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from workers.codec import MAX_REQUEST_BYTES
from workers.errors import LineguardError
from workers.settings import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(LineguardError):
    """The brokers cannot be reached, or the topics are not usable."""


def connection_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers, client id and security, for any aiokafka client."""
    security = settings.security
    options: dict[str, Any] = {
        "bootstrap_servers": settings.brokers,
        "client_id": settings.client_id,
        "security_protocol": security.protocol,
    }
    context = tls_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if security.protocol.startswith("SASL_"):
        assert security.sasl_password is not None  # checked by the settings
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return options


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL: verifies the brokers against the CA file (or the
    system's CAs) and their host names; presents the client certificate when one is set."""
    security = settings.security
    if security.protocol not in ("SSL", "SASL_SSL"):
        return None
    from aiokafka.helpers import create_ssl_context

    context: ssl.SSLContext = create_ssl_context(
        cafile=str(security.ssl_cafile) if security.ssl_cafile else None,
        certfile=str(security.ssl_certfile) if security.ssl_certfile else None,
        keyfile=str(security.ssl_keyfile) if security.ssl_keyfile else None,
        password=(
            security.ssl_key_password.get_secret_value() if security.ssl_key_password else None
        ),
    )
    return context


def broker_credentials(settings: Settings) -> Any:
    """The same security for the faust app's own Kafka settings (its clients stay off)."""
    import faust

    security = settings.security
    context = tls_context(settings)
    if security.protocol.startswith("SASL_"):
        assert security.sasl_password is not None  # checked by the settings
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    return context


def input_consumer(settings: Settings, assignor: Any) -> Any:
    """The group consumer of the input topics; offsets are committed by hand."""
    return AIOKafkaConsumer(
        **connection_options(settings),
        group_id=settings.group_id,
        group_instance_id=settings.group_instance_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        partition_assignment_strategy=(assignor,),
        session_timeout_ms=int(settings.session_timeout_seconds * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_seconds * 1000),
        rebalance_timeout_ms=int(max(settings.session_timeout_seconds, 30) * 1000),
        max_poll_interval_ms=300_000,
        # An idle input holds events back until a fetch sees it still idle (alignment):
        # fetches answer at least twice per alignment wait.
        fetch_max_wait_ms=max(5, min(100, settings.align_wait_ms // 2)),
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


def restore_consumer(settings: Settings) -> Any:
    """A group-less consumer that reads changelog partitions back."""
    return AIOKafkaConsumer(
        **connection_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )


def output_producer(settings: Settings) -> Any:
    """Outputs, dead letters and changelog; acks from all replicas, no idempotence
    (the embedded broker rejects InitProducerId v0; decision ids make retries harmless)."""
    return AIOKafkaProducer(
        **connection_options(settings),
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        # Set, not left to the library's default: every dead letter is cut to fit in it.
        max_request_size=MAX_REQUEST_BYTES,
    )


async def prepare_topics(settings: Settings) -> None:
    """Reach the brokers; create missing topics (if allowed); check co-partitioning."""
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=10_000)
    try:
        await admin.start()
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"cannot reach the Kafka brokers {', '.join(settings.brokers)}: {exc}"
        ) from exc
    try:
        existing = set(await admin.list_topics())
        wanted = settings.topics.all()
        missing = [topic for topic in wanted if topic not in existing]
        if missing and not settings.create_topics:
            raise BrokerUnavailable(f"missing topics (creation is off): {', '.join(missing)}")
        if missing:
            log.info("creating topics %s", missing)
            compact = {"cleanup.policy": "compact"}
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        settings.partitions,
                        settings.replication_factor,
                        topic_configs=compact if topic in settings.topics.compacted() else None,
                    )
                    for topic in missing
                ]
            )
        described = await admin.describe_topics(list(wanted))
        counts = {item["topic"]: len(item["partitions"]) for item in described}
        wrong = {t: n for t, n in counts.items() if n != settings.partitions}
        if wrong:
            raise BrokerUnavailable(
                f"topics must all have {settings.partitions} partitions (co-partitioned); "
                f"found {wrong}"
            )
    except KafkaConnectionError as exc:
        raise BrokerUnavailable(f"lost the Kafka brokers while preparing topics: {exc}") from exc
    finally:
        await admin.close()
