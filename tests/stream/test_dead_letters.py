"""Hostile records at the edge: dead letters bounded in size, and the partition guard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from schemas.events import EVENT_ADAPTER, Event, event_to_json
from workers.codec import (
    MAX_COPIED_HEADER_BYTES,
    MAX_DEAD_LETTER_KEY_BYTES,
    MAX_REQUEST_BYTES,
    Placement,
    Rejected,
    dead_letter_record,
    decode,
    read_dead_letter,
)
from workers.settings import Settings
from workers.stream.clients import output_producer
from workers.stream.routing import partition_for

KIB = 1024


@dataclass(frozen=True)
class Record:
    topic: str = "lineguard.login"
    partition: int = 2
    offset: int = 7
    key: bytes | None = b"u1"
    value: bytes | None = b"{nope"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def login(user_id: str) -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "login",
            "event_id": f"{user_id}-e",
            "user_id": user_id,
            "occurred_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
            "device_id": "d1",
        }
    )


def size(letter_key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """The size aiokafka's producer compares with ``max_request_size``."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(letter_key, value, headers))


# -- bounded dead letters ----------------------------------------------------------------


def test_a_small_record_is_copied_whole_with_no_size_headers() -> None:
    record = Record(headers=[("traceparent", b"00-abc-01")])
    letter = dead_letter_record(Rejected("not_json", "bad"), record, 64 * KIB)
    assert (letter.key, letter.value) == (record.key, record.value)
    names = dict(letter.headers)
    assert "original_size" not in names and "original_sha256" not in names
    assert names["source_header.traceparent"] == b"00-abc-01"
    assert read_dead_letter(letter.headers).original_size is None


def test_a_large_value_is_cut_with_its_size_and_digest_in_headers() -> None:
    value = bytes(range(256)) * 8_000  # 2,048,000 bytes
    letter = dead_letter_record(Rejected("not_json", "bad"), Record(value=value), 64 * KIB)
    assert letter.value == value[: 64 * KIB]
    reported = read_dead_letter(letter.headers)
    assert reported.original_size == len(value)
    assert reported.original_sha256 == hashlib.sha256(value).hexdigest()
    assert (reported.source_topic, reported.source_partition, reported.source_offset) == (
        "lineguard.login",
        2,
        7,
    )


def test_key_and_copied_headers_are_bounded() -> None:
    headers = [(f"h{n}", b"x" * 300) for n in range(20)]
    record = Record(key=b"k" * 100_000, headers=headers)
    letter = dead_letter_record(Rejected("invalid_contract", "bad"), record, 64 * KIB)
    assert letter.key == b"k" * MAX_DEAD_LETTER_KEY_BYTES
    copied = [(n, v) for n, v in letter.headers if n.startswith("source_header.")]
    assert copied and sum(len(n) + len(v) for n, v in copied) <= MAX_COPIED_HEADER_BYTES
    dropped = int(dict(letter.headers)["source_headers_dropped"])
    assert len(copied) + dropped == len(headers)


def test_the_worst_dead_letter_fits_in_the_producers_request_size() -> None:
    """Largest allowed value, longest key, headers, error and topic name: still under 1 MiB."""
    settings_max = Settings.model_fields["dead_letter_max_bytes"].metadata
    largest = max(getattr(item, "le", 0) or 0 for item in settings_max)
    assert largest > 0
    record = Record(
        topic="t" * 249,
        key=b"k" * 10_000_000,
        value=b"v" * 10_000_000,
        headers=[("h", b"x" * 2000), *[(f"n{i}", b"") for i in range(200)]],
    )
    letter = dead_letter_record(Rejected("internal", "é" * 10_000), record, largest)
    assert size(letter.key, letter.value, letter.headers) < MAX_REQUEST_BYTES
    assert size(record.key, record.value, record.headers) > MAX_REQUEST_BYTES


async def test_the_output_producer_sets_its_request_size_explicitly() -> None:
    producer = output_producer(Settings())
    try:
        assert producer._max_request_size == MAX_REQUEST_BYTES
    finally:
        await producer.stop()


def test_dead_letter_size_setting_is_read_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().dead_letter_max_bytes == 64 * KIB
    monkeypatch.setenv("LINEGUARD_DEAD_LETTER_MAX_BYTES", "2048")
    assert Settings().dead_letter_max_bytes == 2048
    monkeypatch.setenv("LINEGUARD_DEAD_LETTER_MAX_BYTES", str(2 * 1024 * KIB))
    with pytest.raises(ValueError, match="dead_letter_max_bytes"):
        Settings()


# -- the partition guard -------------------------------------------------------------------


@pytest.mark.parametrize("partitioner", ["murmur2", "crc32"])
def test_a_record_on_its_keys_partition_decodes(partitioner: str) -> None:
    event = login("alice")
    home = partition_for("alice", 6, partitioner)  # type: ignore[arg-type]
    placement = Placement(home, 6, partitioner)  # type: ignore[arg-type]
    assert decode(event_to_json(event), b"alice", "login", placement) == event


def test_a_record_on_another_partition_is_rejected_with_where_it_belongs() -> None:
    event = login("alice")
    home = partition_for("alice", 6)
    wrong = (home + 1) % 6
    result = decode(event_to_json(event), b"alice", "login", Placement(wrong, 6))
    assert isinstance(result, Rejected)
    assert result.error_kind == "wrong_partition"
    assert result.expected_partition == home
    assert f"partition {home}" in result.error and "murmur2" in result.error
    letter = dead_letter_record(result, Record(partition=wrong, key=b"alice"), 64 * KIB)
    reported = read_dead_letter(letter.headers)
    assert (reported.error_kind, reported.expected_partition) == ("wrong_partition", home)
    assert reported.source_partition == wrong


def test_the_guard_follows_the_configured_partitioner() -> None:
    """A key whose murmur2 and crc32 partitions differ is wrong under exactly one of them."""
    user_id = next(
        f"u{n}"
        for n in range(1000)
        if partition_for(f"u{n}", 6) != partition_for(f"u{n}", 6, "crc32")
    )
    value, key = event_to_json(login(user_id)), user_id.encode()
    crc = partition_for(user_id, 6, "crc32")
    assert not isinstance(decode(value, key, "login", Placement(crc, 6, "crc32")), Rejected)
    rejected = decode(value, key, "login", Placement(crc, 6, "murmur2"))
    assert isinstance(rejected, Rejected) and rejected.error_kind == "wrong_partition"


async def test_the_status_api_looks_users_up_with_the_configured_partitioner() -> None:
    from types import SimpleNamespace

    from workers.stream.status import answer_status

    user_id = next(
        f"u{n}"
        for n in range(1000)
        if partition_for(f"u{n}", 6) != partition_for(f"u{n}", 6, "crc32")
    )
    home = partition_for(user_id, 6, "crc32")
    engine = SimpleNamespace(status=lambda user: {"user_id": user})
    processor = SimpleNamespace(partitions={home: SimpleNamespace(engine=engine)})
    service: Any = SimpleNamespace(processor=processor, ready=True)
    answer = await answer_status(Settings(partitioner="crc32"), service, user_id, None)
    assert (answer.status, answer.body["partition"]) == (200, home)
