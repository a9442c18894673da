"""A worker reaches the brokers over TLS (server and client certificates) and decides.

The embedded broker speaks plain TCP, so a TLS front (workers/tls_front.py) stands before
it and the broker advertises the front's address: every client, after bootstrapping too,
talks TLS. The certificates come from ``openssl`` in a temporary directory."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.harness import TOPICS, decoded, produce, read_topic, worker_process
from tests.integration.scenarios import in_time_order, reason_histories
from workers.broker import EmbeddedBroker, free_port
from workers.settings import Security, Settings
from workers.stream.clients import BrokerUnavailable, prepare_topics
from workers.tls_front import TlsFront, make_certificates

pytestmark = pytest.mark.integration


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the TLS test makes its certificates with the openssl command, not found")
    return make_certificates(tmp_path / "tls")


@pytest.fixture
async def tls_broker(certificates: dict[str, Path]) -> AsyncIterator[TlsFront]:
    """The embedded broker behind a TLS front that also requires client certificates."""
    front_port = free_port()
    async with EmbeddedBroker(advertised_port=front_port) as broker:
        front = TlsFront(
            broker.bootstrap,
            certificates["server.pem"],
            certificates["server.key"],
            client_cafile=certificates["ca.pem"],
            port=front_port,
        )
        with front:
            yield front


def tls_settings(front: TlsFront, certificates: dict[str, Path], **security: object) -> Settings:
    options = {
        "protocol": "SSL",
        "ssl_cafile": certificates["ca.pem"],
        "ssl_certfile": certificates["client.pem"],
        "ssl_keyfile": certificates["client.key"],
        **security,
    }
    return Settings(brokers=[front.bootstrap], partitions=4, security=Security(**options))  # type: ignore[arg-type]


async def test_a_worker_connects_over_tls_and_decides(
    tls_broker: TlsFront, certificates: dict[str, Path], tmp_path: Path
) -> None:
    settings = tls_settings(tls_broker, certificates)
    await prepare_topics(settings)
    worker = worker_process(
        tls_broker.bootstrap,
        tmp_path,
        security__protocol="SSL",
        security__ssl_cafile=str(certificates["ca.pem"]),
        security__ssl_certfile=str(certificates["client.pem"]),
        security__ssl_keyfile=str(certificates["client.key"]),
    )
    try:
        worker.start().wait_ready()
        history = reason_histories(prefix="tls")["LOW_CREDIT_SCORE"]
        user_id = history[0].user_id
        await produce("", in_time_order([history]), settings=settings)

        def closed(records: list[object]) -> bool:
            return any(d["decision"] == "close_line" for d in decoded(records))

        records = await read_topic("", TOPICS.decisions, closed, settings=settings)
        closes = [d for d in decoded(records) if d["decision"] == "close_line"]
        assert [d["user_id"] for d in closes] == [user_id]
        status, body = worker.get(f"/users/{user_id}")
        assert status == 200 and body["line_state"] == "closed"
    finally:
        worker.stop()
    assert tls_broker.handshakes > 0


async def test_clients_without_a_trusted_certificate_are_refused(
    tls_broker: TlsFront, certificates: dict[str, Path]
) -> None:
    # No client certificate: the front requires one.
    anonymous = tls_settings(tls_broker, certificates, ssl_certfile=None, ssl_keyfile=None)
    with pytest.raises((BrokerUnavailable, ssl.SSLError, OSError)):
        await prepare_topics(anonymous)
    # Plain TCP to the TLS port gets nowhere either.
    plain = Settings(brokers=[tls_broker.bootstrap], partitions=4)
    with pytest.raises(BrokerUnavailable):
        await prepare_topics(plain)
