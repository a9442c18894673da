"""Bytes to contracts and back, at the edge: an event, or the reason it is a dead letter.

A dead letter keeps the original bytes as its value, cut down to a bounded size (then the
``original_size`` and ``original_sha256`` headers describe the whole value); its headers
name the error (``schemas.outputs.DeadLetter`` fields, UTF-8 strings): ``error_kind``,
``error``, ``source_topic``, ``source_partition``, ``source_offset``, ``schema_version``
and, for ``wrong_partition``, ``expected_partition``. The source record's own headers
follow as ``source_header.NAME``, 2 KiB of them at most; its key is cut to 1 KiB. So a
dead letter always fits in one produce request, however large the record it reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from schemas.control import OverrideRecord
from schemas.events import Event
from schemas.outputs import DeadLetter, Output
from workers.decoding import Rejected as Rejected
from workers.decoding import decode_event, decode_override
from workers.stream.routing import Partitioner, partition_for

Headers = list[tuple[str, bytes]]

_MAX_ERROR_CHARS = 500
MAX_REQUEST_BYTES = 1024 * 1024
"""The output producer's ``max_request_size``: every record it sends fits in this."""
MAX_DEAD_LETTER_KEY_BYTES = 1024
MAX_COPIED_HEADER_BYTES = 2048
COPIED_HEADER_PREFIX = "source_header."


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a record arrived, and how the producers map a ``user_id`` key to a partition."""

    partition: int
    partitions: int
    partitioner: Partitioner = "murmur2"


def decode(
    value: bytes | None,
    key: bytes | None,
    expected_type: str | None,
    placement: Placement | None = None,
) -> Event | Rejected:
    """The event in ``value``, or why not.

    ``expected_type`` is the event type of the source topic (None: any type); the record
    key must be the event's ``user_id``, since the key decides the partition that holds
    the user's state. With a ``placement``, the record must have arrived on the partition
    its key maps to: one from a producer with another partitioner would split the user's
    state over two partitions, so it is a ``wrong_partition`` dead letter, never applied.
    """
    if not value:
        return Rejected("not_json", "the record has no value")
    decoded = decode_event(value)
    if isinstance(decoded, Rejected):
        return Rejected(decoded.error_kind, decoded.error[:_MAX_ERROR_CHARS])
    if expected_type is not None and decoded.type != expected_type:
        return Rejected(
            "wrong_topic", f"a {decoded.type} event on the topic for {expected_type} events"
        )
    if key is None or key != decoded.user_id.encode():
        shown = "no key" if key is None else f"key {key[:64]!r}"
        return Rejected(
            "invalid_contract",
            f"the record key must be the user_id {decoded.user_id!r}, not {shown}",
        )
    misplaced = _misplaced(decoded.user_id, placement)
    return decoded if misplaced is None else misplaced


def _misplaced(user_id: str, placement: Placement | None) -> Rejected | None:
    """Why a record keyed by ``user_id`` does not belong on the partition it arrived on
    (``None``: it does, or there is no ``placement`` to check)."""
    if placement is None:
        return None
    expected = partition_for(user_id, placement.partitions, placement.partitioner)
    if expected == placement.partition:
        return None
    return Rejected(
        "wrong_partition",
        f"the key {user_id!r} belongs on partition {expected} of "
        f"{placement.partitions} ({placement.partitioner}), not on "
        f"{placement.partition}: the producer must use the {placement.partitioner} "
        "partitioner",
        expected_partition=expected,
    )


TOMBSTONE_ACTOR = "tombstone"
"""``changed_by`` of the change a tombstone of the overrides topic stands for."""


def decode_overrides(
    value: bytes | None,
    key: bytes | None,
    timestamp_ms: int,
    placement: Placement | None = None,
) -> OverrideRecord | Rejected:
    """The override change in a record of ``lineguard.overrides``, or why not.

    The key must be the record's ``user_id`` and, with a ``placement``, map to the partition
    it arrived on (the user's state is there). A tombstone (no value) removes every override
    of the user named by the key, dated at the record's timestamp."""
    if key is None or not key:
        return Rejected("invalid_contract", "an overrides record needs the user id as its key")
    if value is None:
        try:
            user_id = key.decode()
            record = OverrideRecord.model_validate(
                {
                    "user_id": user_id,
                    "overrides": [],
                    "changed_at": _iso_ms(timestamp_ms),
                    "changed_by": TOMBSTONE_ACTOR,
                }
            )
        except (UnicodeDecodeError, ValueError) as exc:
            return Rejected("invalid_contract", f"a tombstone that names no user: {exc}"[:500])
    else:
        decoded = decode_override(value)
        if isinstance(decoded, Rejected):
            return Rejected(decoded.error_kind, decoded.error[:_MAX_ERROR_CHARS])
        record = decoded
        if key != record.user_id.encode():
            return Rejected(
                "invalid_contract",
                f"the record key must be the user_id {record.user_id!r}, not key {key[:64]!r}",
            )
    misplaced = _misplaced(record.user_id, placement)
    return record if misplaced is None else misplaced


def _iso_ms(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_headers(rejected: Rejected, topic: str, partition: int, offset: int) -> Headers:
    """The headers of the dead letter for one source record."""
    headers = [
        ("error_kind", rejected.error_kind.encode()),
        ("error", rejected.error[:_MAX_ERROR_CHARS].encode()),
        ("source_topic", topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
        ("schema_version", b"1"),
    ]
    if rejected.expected_partition is not None:
        headers.append(("expected_partition", str(rejected.expected_partition).encode()))
    return headers


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """What is sent to the dead-letter topic for one source record."""

    key: bytes | None
    value: bytes | None
    headers: Headers


class SourceRecord(Protocol):
    """The fields of a consumed record that a dead letter reports (aiokafka's
    ``ConsumerRecord`` has them)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


def dead_letter_record(
    rejected: Rejected, record: SourceRecord, max_value_bytes: int
) -> DeadLetterRecord:
    """The dead letter of a consumed ``record``, bounded in size: the value cut to
    ``max_value_bytes`` (with its original size and SHA-256 in headers), the key to 1 KiB,
    the copied source headers to 2 KiB in all."""
    headers = dead_letter_headers(rejected, record.topic, record.partition, record.offset)
    value = record.value
    if value is not None and len(value) > max_value_bytes:
        headers.append(("original_size", str(len(value)).encode()))
        headers.append(("original_sha256", hashlib.sha256(value).hexdigest().encode()))
        value = value[:max_value_bytes]
    key = record.key
    if key is not None and len(key) > MAX_DEAD_LETTER_KEY_BYTES:
        key = key[:MAX_DEAD_LETTER_KEY_BYTES]
    headers.extend(_copied_headers(record.headers or ()))
    return DeadLetterRecord(key, value, headers)


def _copied_headers(source: Iterable[tuple[str, bytes | None]]) -> Headers:
    """The source record's headers, renamed, while they fit in 2 KiB (names included);
    ``source_headers_dropped`` counts those left out."""
    copied: Headers = []
    budget, dropped = MAX_COPIED_HEADER_BYTES, 0
    for name, raw in source:
        renamed, data = COPIED_HEADER_PREFIX + name, raw or b""
        size = len(renamed.encode()) + len(data)
        if size <= budget:
            copied.append((renamed, data))
            budget -= size
        else:
            dropped += 1
    if dropped:
        copied.append(("source_headers_dropped", str(dropped).encode()))
    return copied


def read_dead_letter(
    headers: Sequence[tuple[str, bytes]] | Iterable[tuple[str, bytes]],
) -> DeadLetter:
    """The ``DeadLetter`` named by a dead-letter record's headers (for consumers and tests)."""
    fields = {name: raw.decode() for name, raw in headers}
    return DeadLetter.model_validate(
        {
            "error_kind": fields["error_kind"],
            "error": fields["error"],
            "source_topic": fields["source_topic"],
            "source_partition": int(fields["source_partition"]),
            "source_offset": int(fields["source_offset"]),
            "schema_version": int(fields.get("schema_version", "1")),
            **{
                name: int(fields[name]) if name != "original_sha256" else fields[name]
                for name in ("expected_partition", "original_size", "original_sha256")
                if name in fields
            },
        }
    )


def encode_output(output: Output) -> bytes:
    """The wire form of a flag or a decision: its JSON, exactly as the contract says."""
    return output.model_dump_json().encode()
