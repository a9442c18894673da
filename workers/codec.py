"""Bytes to contracts and back, at the edge: an event, or the reason it is a dead letter.

A dead letter keeps the original bytes as its value; its headers name the error
(``schemas.outputs.DeadLetter`` fields, UTF-8 strings): ``error_kind``, ``error``,
``source_topic``, ``source_partition``, ``source_offset`` and ``schema_version``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.events import Event
from schemas.outputs import DeadLetter, Decision, ErrorKind, Flag
from workers.decoding import Rejected as Rejection
from workers.decoding import decode_event

Headers = list[tuple[str, bytes]]

_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message is not a usable event."""

    error_kind: ErrorKind
    error: str


def decode(value: bytes | None, key: bytes | None, expected_type: str | None) -> Event | Rejected:
    """The event in ``value``, or why not.

    ``expected_type`` is the event type of the source topic (None: any type); the record
    key must be the event's ``user_id``, since the key decides the partition that holds
    the user's state.
    """
    if not value:
        return Rejected("not_json", "the record has no value")
    decoded = decode_event(value)
    if isinstance(decoded, Rejection):
        return Rejected(decoded.kind, decoded.reason[:_MAX_ERROR_CHARS])
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
    return decoded


def dead_letter_headers(rejected: Rejected, topic: str, partition: int, offset: int) -> Headers:
    """The headers of the dead letter for one source record."""
    return [
        ("error_kind", rejected.error_kind.encode()),
        ("error", rejected.error.encode()),
        ("source_topic", topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
        ("schema_version", b"1"),
    ]


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
        }
    )


def encode_output(output: Flag | Decision) -> bytes:
    """The wire form of a flag or a decision: its JSON, exactly as the contract says."""
    return output.model_dump_json().encode()
