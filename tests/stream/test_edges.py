"""The worker's edges without a broker: settings, codec, metrics, time order, assignment, stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, Event, event_to_json
from workers.codec import Rejected, dead_letter_headers, decode, read_dead_letter
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream.assignor import plan
from workers.stream.routing import partition_for
from workers.stream.store import MemoryStore, RocksStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def login(user_id: str, minutes: int, event_id: str = "") -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "login",
            "event_id": event_id or f"{user_id}-{minutes}",
            "user_id": user_id,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "device_id": "d1",
        }
    )


# -- settings ---------------------------------------------------------------------------


def test_settings_read_nested_env_and_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEGUARD_BROKERS", "a:9092, b:9093")
    monkeypatch.setenv("LINEGUARD_TOPICS__DECISIONS", "risk.decisions")
    monkeypatch.setenv("LINEGUARD_SECURITY__PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LINEGUARD_SECURITY__SASL_USERNAME", "svc")
    monkeypatch.setenv("LINEGUARD_SECURITY__SASL_PASSWORD", "hunter2")
    settings = Settings()
    assert settings.brokers == ["a:9092", "b:9093"]
    assert settings.topics.decisions == "risk.decisions"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.summary())
    assert settings.security.sasl_password is not None
    assert settings.security.sasl_password.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    "env",
    [
        {"LINEGUARD_SECURITY__PROTOCOL": "SASL_SSL"},  # no credentials
        {"LINEGUARD_TOPICS__FLAGS": "lineguard.decisions"},  # two roles, one topic
        {"LINEGUARD_HEARTBEAT_INTERVAL_SECONDS": "5", "LINEGUARD_SESSION_TIMEOUT_SECONDS": "6"},
        {"LINEGUARD_STORE": "postgres"},
    ],
)
def test_settings_reject_unusable_combinations(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        Settings()


# -- codec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key", "topic_type", "kind"),
    [
        (None, b"u1", "login", "not_json"),
        (b"{nope", b"u1", "login", "not_json"),
        (b"[1, 2]", b"u1", "login", "invalid_contract"),
        (b'{"type": "warp", "event_id": "e", "user_id": "u1"}', b"u1", "login", "unknown_type"),
        (event_to_json(login("u1", 0)), b"u1", "transaction", "wrong_topic"),
        (event_to_json(login("u1", 0)), b"u2", "login", "invalid_contract"),
        (event_to_json(login("u1", 0)), None, "login", "invalid_contract"),
    ],
)
def test_bad_records_are_rejected_with_their_kind(
    value: bytes | None, key: bytes | None, topic_type: str, kind: str
) -> None:
    result = decode(value, key, topic_type)
    assert isinstance(result, Rejected)
    assert result.error_kind == kind
    assert result.error


def test_a_good_record_decodes_and_dead_letter_headers_round_trip() -> None:
    event = login("u1", 0)
    assert decode(event_to_json(event), b"u1", "login") == event
    headers = dead_letter_headers(Rejected("wrong_topic", "why"), "lineguard.login", 3, 42)
    letter = read_dead_letter(headers)
    assert (letter.error_kind, letter.error, letter.source_topic) == (
        "wrong_topic",
        "why",
        "lineguard.login",
    )
    assert (letter.source_partition, letter.source_offset) == (3, 42)


# -- metrics ----------------------------------------------------------------------------


def test_metric_names_are_the_published_ones_and_carry_no_user_id() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.set_build("1.0", "p1")
    metrics.decision("close_line", "CASH_OUT").inc()
    metrics.flag("OVERDUE").inc()
    metrics.dead_letter("not_json").inc()
    metrics.partition(0)[0].set(1.0)
    metrics.consumed_by_type["login"].inc()
    text = generate_latest(metrics.registry).decode()
    for name in (
        "lineguard_events_consumed_total",
        "lineguard_decisions_total",
        "lineguard_flags_total",
        "lineguard_dead_letters_total",
        "lineguard_duplicates_total",
        "lineguard_event_to_decision_latency_seconds",
        "lineguard_partition_event_time_lag_seconds",
        "lineguard_consumer_lag_messages",
        "lineguard_deadline_index_size",
        "lineguard_users_in_store",
        "lineguard_stored_users",
        "lineguard_live_users",
        "lineguard_store_reads_total",
        "lineguard_changelog_restore_seconds",
        "lineguard_rebalances_total",
        "lineguard_batch_duration_seconds",
        "lineguard_ready",
        "lineguard_build_info",
    ):
        assert f"\n{name}" in text, name
    assert "user" not in {
        label for m in metrics.registry.collect() for s in m.samples for label in s.labels
    }
    assert metrics.decision("close_line", "CASH_OUT") is metrics.decision("close_line", "CASH_OUT")
    metrics.forget_partition(0)
    assert 'partition="0"' not in generate_latest(metrics.registry).decode()


# -- assignment and routing ---------------------------------------------------------------


def test_assignment_is_balanced_and_keeps_partitions_where_they_were() -> None:
    assert plan([0, 1, 2, 3], {"a": [], "b": []}) == {"a": [0, 2], "b": [1, 3]}
    assert plan([0, 1, 2, 3], {"a": [0, 1, 2, 3], "b": []}) == {"a": [0, 1], "b": [2, 3]}
    three = plan(list(range(4)), {"a": [0, 1], "b": [2, 3], "c": []})
    assert sorted(len(n) for n in three.values()) == [1, 1, 2]
    assert three["a"][0] == 0 and three["b"][0] == 2
    assert plan([0, 1], {"only": [5]}) == {"only": [0, 1]}


def test_partition_for_matches_the_kafka_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = list(range(6))
    for user_id in ("alice", "u00000042", "日本"):
        expected = DefaultPartitioner()(user_id.encode(), partitions, partitions)
        assert partition_for(user_id, 6) == expected
        assert partition_for(user_id, 6, "murmur2") == expected


def test_partition_for_crc32_is_librdkafkas_consistent_partitioner() -> None:
    # librdkafka's consistent partitioner: CRC-32 (IEEE) of the key, modulo the count.
    # 0xCBF43926 is CRC-32's published check value, of the bytes "123456789".
    assert partition_for("123456789", 1_000_003, "crc32") == 0xCBF43926 % 1_000_003
    assert {partition_for(f"u{n}", 4, "crc32") for n in range(100)} == {0, 1, 2, 3}


# -- stores -----------------------------------------------------------------------------


def test_the_rocksdb_store_keeps_users_their_deadlines_and_the_changelog_offset(
    tmp_path: Path,
) -> None:
    index = {"alice": (5_000_000, 0), "bob": (None, 0), "carol": (7, 2)}
    store = RocksStore(tmp_path, 2)
    assert store.changelog_offset == 0 and store.user_count == 0
    assert store.get("alice") is None and store.get("bob") is None
    store.write({"alice": b"\x01", "bob": b"\x02"}, 10, index.__getitem__)
    assert store.user_count == 2  # both were looked up and missing: new
    assert store.get("nobody") is None  # a lookup that creates nothing counts nothing
    store.write({"alice": b"\x03"}, 7, index.__getitem__)  # an older offset never moves it back
    store.write({"carol": b"\x04", "bob": b"\x05"}, 12, index.__getitem__, restored=True)
    assert store.user_count == 3  # read back from the changelog: looked up in the store
    store.close()
    reopened = RocksStore(tmp_path, 2)
    assert (reopened.get("alice"), reopened.get("bob"), reopened.get("carol")) == (
        b"\x03",
        b"\x05",
        b"\x04",
    )
    assert sorted(reopened.pending()) == [("alice", 5_000_000, 0), ("carol", 7, 2)]
    assert (reopened.changelog_offset, reopened.user_count) == (12, 3)
    reopened.close()
    RocksStore.destroy(tmp_path, 2)
    assert RocksStore(tmp_path, 2).changelog_offset == 0


def test_a_rocksdb_store_without_the_deadline_index_is_rebuilt_from_the_changelog(
    tmp_path: Path,
) -> None:
    from rocksdict import Options, Rdict

    old = Rdict(str(tmp_path / "partition-1"), options=Options(raw_mode=True))
    old[b"u:alice"] = b"\x01"
    old[b"m:changelog-offset"] = (10).to_bytes(8, "big")
    old.close()
    store = RocksStore(tmp_path, 1)
    assert (store.changelog_offset, store.user_count, store.get("alice")) == (0, 0, None)


def test_the_memory_store_only_tracks_the_offset() -> None:
    store = MemoryStore(0)
    store.write({"alice": b"\x01"}, 3, lambda user_id: (None, 0))
    assert store.changelog_offset == 3 and store.get("alice") is None
    assert list(store.pending()) == [] and store.user_count == 0


def test_client_options_carry_sasl_credentials_only_into_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workers.stream.clients import connection_options

    monkeypatch.setenv("LINEGUARD_SECURITY__PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LINEGUARD_SECURITY__SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("LINEGUARD_SECURITY__SASL_USERNAME", "svc")
    monkeypatch.setenv("LINEGUARD_SECURITY__SASL_PASSWORD", "hunter2")
    options = connection_options(Settings())
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "hunter2")
    assert "ssl_context" not in options
    plain = connection_options(Settings(security={"protocol": "PLAINTEXT"}))
    assert not {key for key in plain if key.startswith(("sasl", "ssl"))}
