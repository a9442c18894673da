"""Which partition holds a user: the producers' partitioner applied to the ``user_id`` key.

Every producer of every input topic must map a user id to the same partition number, so a
user's events of every type land where the user's state is. The default is Kafka's default
partitioner, murmur2 of the key bytes (the Java client, Kafka Streams, aiokafka, franz-go,
kafkajs 2.x; librdkafka with ``partitioner=murmur2_random``). ``crc32`` is librdkafka's own
default (``consistent_random``: CRC-32 of the key) for a platform whose producers all use it.
``LINEGUARD_PARTITIONER`` picks one; the partition guard and the status API use the same.
"""

from __future__ import annotations

import zlib
from typing import Literal

from aiokafka.partitioner import murmur2

Partitioner = Literal["murmur2", "crc32"]


def partition_for(user_id: str, partitions: int, partitioner: Partitioner = "murmur2") -> int:
    """The partition number of ``user_id`` among ``partitions`` under ``partitioner``."""
    key = user_id.encode()
    if partitioner == "crc32":
        return zlib.crc32(key) % partitions
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
