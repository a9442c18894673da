"""Which partition holds a user: the Kafka default partitioner (murmur2 of the key).

Producers must key every event by ``user_id`` with this partitioner (the Java client's
and aiokafka's default; librdkafka's ``murmur2_random``) so a user's events of every
type land on the same partition number and the status API finds its owner.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(user_id: str, partitions: int) -> int:
    return int(murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions
