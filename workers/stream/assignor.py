"""Group assignment: whole partition numbers per worker, sticky, with a routing table.

Every input topic has the same partition count, and a user's events of every type share
a partition number; so a worker owns partition numbers, never single topic partitions.
Each member sends its status URL and the numbers it holds; the leader keeps numbers where
they are when it can (restoring state costs time), balances the rest, and sends every
member the full ``partition -> status URL`` table, which routes status requests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger(__name__)


def plan(partitions: list[int], held: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    """Partition numbers per member: each keeps what it held up to its fair share."""
    members = sorted(held)
    if not members:
        return {}
    fair = len(partitions) // len(members)
    valid = set(partitions)
    owner: dict[int, str] = {}
    taken: dict[str, list[int]] = {member: [] for member in members}
    for member in members:
        for number in sorted(set(held[member]) & valid):
            if number not in owner and len(taken[member]) < fair:
                owner[number] = member
                taken[member].append(number)
    for number in partitions:
        if number not in owner:
            member = min(members, key=lambda m: (len(taken[m]), m))
            owner[number] = member
            taken[member].append(number)
    return {member: sorted(numbers) for member, numbers in taken.items()}


class CopartitionedAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """An instance (not the class) goes in ``partition_assignment_strategy``."""

    name = "lineguard-copartitioned"
    version = 0

    def __init__(self, url: str, held: Callable[[], Iterable[int]]) -> None:
        self.url = url
        self._held = held
        self.owners: dict[int, str] = {}

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        user_data = json.dumps({"url": self.url, "held": sorted(self._held())}).encode()
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), user_data)

    def assign(
        self, cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        counts = {topic: cluster.partitions_for_topic(topic) or set() for topic in topics}
        common = set.intersection(*counts.values()) if counts else set()
        if len({len(numbers) for numbers in counts.values()}) > 1:
            log.error(
                "input topics are not co-partitioned: %s", {t: len(n) for t, n in counts.items()}
            )
        info = {member: _read(meta.user_data) for member, meta in members.items()}
        layout = plan(sorted(common), {m: info[m].get("held", []) for m in members})
        owners = {n: str(info[m].get("url", "")) for m, numbers in layout.items() for n in numbers}
        table = json.dumps({"owners": owners}).encode()
        return {
            member: ConsumerProtocolMemberAssignment(
                self.version, [(topic, numbers) for topic in topics], table
            )
            for member, numbers in layout.items()
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        owners = _read(assignment.user_data).get("owners", {})
        self.owners = {int(number): str(url) for number, url in owners.items()}


def _read(user_data: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(user_data or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
