"""The partitions a worker owns: each one's engine, store and time order, and how they are
opened, restored from the changelog and rebuilt after a failed batch.

With a challenger policy, each partition also has a shadow engine, forked from the live one
whenever the live one is opened, restored or rebuilt, and when a challenger is published;
it is never saved: its states live in memory (forked from a store snapshot with RocksDB)
until the next fork.

The live-user budget (``LINEGUARD_LIVE_USERS``) is the worker's, shared evenly by its
partitions: each engine keeps at most its share of users as live objects. With the memory
store the rest are held as bytes; with RocksDB the rest are read from the store on first
use, and opening a partition reads only its deadline index, never the users' states.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from workers.core.engine import Engine
from workers.core.policy import Policy
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream.changelog import read_to_end
from workers.stream.ordering import TimeOrder
from workers.stream.store import PartitionStore, RocksStore, open_store

log = logging.getLogger(__name__)


@dataclass
class Partition:
    """Everything this worker holds for one partition number."""

    number: int
    engine: Engine
    store: PartitionStore
    order: TimeOrder
    shadow: Engine | None = None
    """The challenger policy's engine, forked from ``engine`` (never saved)."""


class PartitionSet:
    """The owned partitions, by number."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        metrics: Metrics,
        restore_consumer: Any,
        engine_factory: Callable[..., Engine] = Engine,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.challenger: Policy | None = None
        """The challenger policy run beside ``policy`` (None: none)."""
        self.metrics = metrics
        self.restore_consumer = restore_consumer
        self.engine_factory = engine_factory
        self.partitions: dict[int, Partition] = {}

    def live_share(self, owned: int) -> int:
        """Each partition's share of the worker's live users."""
        return max(1, self.settings.live_users // max(1, owned))

    async def assign(self, numbers: set[int], new_order: Callable[[], TimeOrder]) -> None:
        """Own exactly ``numbers``: close the others, open and restore the new ones."""
        for number in sorted(set(self.partitions) - numbers):
            self.partitions.pop(number).store.close()
            self.metrics.forget_partition(number)
        added = sorted(numbers - set(self.partitions))
        for number in added:
            self.partitions[number] = self._open(number, new_order())
        share = self.live_share(len(numbers))
        for part in self.partitions.values():
            part.engine.set_live_limit(share)
        await self.restore(added)

    async def rebuild(self, numbers: Iterable[int]) -> None:
        """Replace the engines of ``numbers`` by what the store and changelog hold."""
        rebuilt = sorted(numbers)
        for number in rebuilt:
            part = self.partitions[number]
            part.store.close()
            self.partitions[number] = self._open(number, part.order)
        await self.restore(rebuilt)

    def _open(self, number: int, order: TimeOrder) -> Partition:
        directory = self.settings.data_dir / self.settings.group_id
        store = open_store(self.settings.store, directory, number)
        engine = self.engine_factory(
            self.policy,
            live_users=self.live_share(max(1, len(self.partitions))),
            loader=self._loader(store) if store.holds_states else None,
        )
        for user_id, deadline, waiting in store.pending():
            engine.restore_pending(user_id, deadline, waiting)
        return Partition(number, engine, store, order)

    def _loader(self, store: PartitionStore) -> Callable[[str], bytes | None]:
        """The engine's way to a state it does not hold: read from the store, counted."""
        get, reads = store.get, self.metrics.store_reads

        def load(user_id: str) -> bytes | None:
            blob = get(user_id)
            if blob is not None:
                reads.inc()
            return blob

        return load

    async def restore(self, numbers: list[int]) -> None:
        """Apply each partition's changelog tail, from its store's offset to the high watermark."""
        if not numbers:
            return
        started = time.perf_counter()
        starts = {n: self.partitions[n].store.changelog_offset for n in numbers}
        restored: dict[int, dict[str, bytes]] = {n: {} for n in numbers}

        def apply(number: int, records: list[Any]) -> None:
            engine, latest = self.partitions[number].engine, restored[number]
            for record in records:
                user_id = record.key.decode()
                engine.restore(user_id, record.value)
                latest[user_id] = record.value

        topic = self.settings.topics.changelog
        ends = await read_to_end(self.restore_consumer, topic, starts, apply)
        for number, end in ends.items():
            part = self.partitions[number]
            if end < starts[number]:
                log.warning(
                    "changelog partition %d was replaced; discarding the local store", number
                )
                part.store.close()
                if self.settings.store == "rocksdb":
                    RocksStore.destroy(self.settings.data_dir / self.settings.group_id, number)
                self.partitions[number] = self._open(number, part.order)
                await self.restore([number])
                continue
            part.store.write(restored[number], end, part.engine.pending, restored=True)
            part.engine.drop_cold()
            self.fork(part)
        elapsed = time.perf_counter() - started
        self.metrics.restore_seconds.observe(elapsed)
        read = sum(len(latest) for latest in restored.values())
        log.info(
            "restored partitions %s in %.3f s",
            numbers,
            elapsed,
            extra={"changelog_users_read": read, "changelog_starts": starts},
        )

    def fork(self, part: Partition) -> None:
        """Run the challenger on ``part`` from the live engine's present (everything saved:
        a store that holds states is read through a snapshot, else every state is copied);
        no challenger, no shadow engine."""
        if self.challenger is None:
            part.shadow = None
            return
        loader = part.store.snapshot() if part.store.holds_states else None
        part.shadow = part.engine.fork(self.challenger, loader=loader)

    def close(self) -> None:
        for part in self.partitions.values():
            part.store.close()
