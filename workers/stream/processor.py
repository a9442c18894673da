"""The hot path: a batch of records in, state and outputs out, offsets committed last.

One ``poll``: fetch a batch, decode at the edge (bad records become dead letters), put
each partition's events in time order, apply them to the partition's engine, send the
flags, decisions and dead letters and wait for the broker's acks, then send each changed
user's state to the changelog and wait again, save it in the store, and only then commit
the input offsets. A crash anywhere in between redelivers inputs whose outputs carry the
same deterministic ids; nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from schemas.outputs import Decision, Flag
from workers.codec import Rejected, dead_letter_headers, decode, encode_output
from workers.core.engine import Engine
from workers.core.policy import Policy
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream.changelog import read_to_end, send_changelog
from workers.stream.ordering import TimeOrder
from workers.stream.store import PartitionStore, RocksStore, open_store

log = logging.getLogger(__name__)

Output = Flag | Decision
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def _from_the_future(occurred_at: datetime, latest: datetime) -> Rejected:
    return Rejected(
        "invalid_contract",
        f"occurred_at {occurred_at.isoformat()} is ahead of the worker's clock "
        f"(latest accepted {latest.isoformat()})",
    )


@dataclass
class Partition:
    """Everything this worker holds for one partition number."""

    number: int
    engine: Engine
    store: PartitionStore
    order: TimeOrder


class Processor:
    """State, time order and the batch cycle for the partitions this worker owns."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        metrics: Metrics,
        consumer: Any,
        producer: Any,
        restore_consumer: Any,
        clock: Clock = wall_clock,
    ) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.input_types = settings.topics.inputs()
        self.policy = policy
        self.metrics = metrics
        self.consumer = consumer
        self.producer = producer
        self.restore_consumer = restore_consumer
        self.clock = clock
        self.partitions: dict[int, Partition] = {}
        self.ready = False
        self._lock = asyncio.Lock()
        self._committed: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()

    # -- the batch cycle ------------------------------------------------------------

    async def poll(self, timeout_ms: int = 200) -> int:
        """Fetch and process one batch; returns the number of records consumed."""
        batch = await self.consumer.getmany(
            timeout_ms=timeout_ms, max_records=self.settings.max_batch_records
        )
        if not batch and not any(len(part.order) for part in self.partitions.values()):
            return 0
        async with self._lock:
            started = time.perf_counter()
            count = await self._process(batch, time.monotonic())
            self.metrics.batch_duration.observe(time.perf_counter() - started)
        return count

    async def _process(self, batch: dict[Any, list[Any]], received: float) -> int:
        dead: list[tuple[Any, Rejected]] = []
        types: Counter[str] = Counter()
        count = 0
        latest = self._latest_acceptable()
        for tp, records in batch.items():
            part = self.partitions.get(tp.partition)
            if part is None:
                continue  # revoked while the batch was in flight; re-read by the new owner
            topic, expected, order = tp.topic, self.input_types[tp.topic], part.order
            count += len(records)
            for record in records:
                result = decode(record.value, record.key, expected)
                if latest and not isinstance(result, Rejected) and result.occurred_at > latest:
                    result = _from_the_future(result.occurred_at, latest)
                if isinstance(result, Rejected):
                    dead.append((record, result))
                    order.skip(topic, record.offset)
                else:
                    types[result.type] += 1
                    order.add(topic, record.offset, result, received, record)
        for event_type, n in types.items():
            self.metrics.consumed_by_type[event_type].inc(n)

        outputs: list[tuple[int, Output, float]] = []
        duplicates = 0
        for part in self.partitions.values():
            if not len(part.order):
                continue
            caught_up = await self._caught_up(part)
            engine, number = part.engine, part.number
            for held in part.order.release(caught_up.__contains__):
                try:
                    step = engine.apply(held.event)
                except Exception as exc:  # a defect in the core must not stop the stream
                    log.exception("the decision core failed on %s", held.event.event_id)
                    dead.append((held.record, Rejected("internal", f"{type(exc).__name__}: {exc}")))
                    continue
                duplicates += step.duplicate
                outputs.extend((number, output, held.received) for output in step.outputs)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        await self._flush(outputs, dead)
        await self._commit()
        self._apply_backpressure()
        return count

    def _latest_acceptable(self) -> datetime | None:
        """Under the wall clock, the latest ``occurred_at`` accepted: an event from the
        future would drag the partition's clock ahead and fire every user's deadlines."""
        if self.settings.clock != "wall":
            return None
        return self.clock() + timedelta(seconds=self.settings.max_future_skew_seconds)

    async def _caught_up(self, part: Partition) -> set[str]:
        """The input topics of ``part`` with no unread records (position at the high watermark)."""
        done: set[str] = set()
        for topic in self.input_types:
            tp = TopicPartition(topic, part.number)
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            position = part.order.next_offset(topic)
            if position is None:
                try:
                    position = await self.consumer.position(tp)
                except IllegalStateError:
                    continue  # no longer assigned: the rebalance listener is waiting
                part.order.skip(topic, position - 1)
            if position >= highwater:
                done.add(topic)
        return done

    async def _flush(
        self, outputs: list[tuple[int, Output, float]], dead: list[tuple[Any, Rejected]]
    ) -> None:
        """Outputs and dead letters acknowledged first, then the changelog, then the store."""
        send = self.producer.send
        pending = []
        for number, output, _ in outputs:
            topic = self.topics.decisions if isinstance(output, Decision) else self.topics.flags
            key = output.user_id.encode()
            pending.append(await send(topic, encode_output(output), key=key, partition=number))
        for record, rejected in dead:
            headers = dead_letter_headers(rejected, record.topic, record.partition, record.offset)
            pending.append(
                await send(
                    self.topics.dead_letter,
                    record.value,
                    key=record.key,
                    partition=record.partition,
                    headers=headers,
                )
            )
        if pending:
            await asyncio.gather(*pending)
            self._count_outputs(outputs, dead, time.monotonic())

        changelog: list[tuple[Partition, dict[str, bytes], list[Any]]] = []
        for part in self.partitions.values():
            dirty = part.engine.take_dirty()
            if dirty:
                futures = await send_changelog(
                    self.producer, self.topics.changelog, part.number, dirty
                )
                changelog.append((part, dirty, futures))
        for part, dirty, futures in changelog:
            acks = await asyncio.gather(*futures)
            part.store.write(dirty, max(ack.offset + count for ack, count in acks))

    def _count_outputs(
        self,
        outputs: list[tuple[int, Output, float]],
        dead: list[tuple[Any, Rejected]],
        acked: float,
    ) -> None:
        metrics = self.metrics
        for _, output, received in outputs:
            metrics.latency.observe(max(0.0, acked - received))
            if isinstance(output, Decision):
                for reason in output.reasons or ():
                    metrics.decision(output.decision, reason.code).inc()
                if not output.reasons:
                    metrics.decision(output.decision, "NONE").inc()
            else:
                metrics.flag(output.signal).inc()
        for _, rejected in dead:
            metrics.dead_letter(rejected.error_kind).inc()

    async def _commit(self) -> None:
        offsets: dict[TopicPartition, int] = {}
        for part in self.partitions.values():
            for topic, offset in part.order.commit_offsets().items():
                tp = TopicPartition(topic, part.number)
                if self._committed.get(tp) != offset:
                    offsets[tp] = offset
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("offset commit refused during a rebalance: %s", exc)
            return
        self._committed.update(offsets)

    def _apply_backpressure(self) -> None:
        """Pause inputs whose records pile up waiting for a slower topic; resume them after."""
        limit = self.settings.max_pending_per_partition
        for part in self.partitions.values():
            for topic in self.input_types:
                tp = TopicPartition(topic, part.number)
                held = part.order.held_count(topic)
                if held > limit and tp not in self._paused:
                    self.consumer.pause(tp)
                    self._paused.add(tp)
                elif held <= limit // 2 and tp in self._paused:
                    self.consumer.resume(tp)
                    self._paused.discard(tp)

    # -- time -------------------------------------------------------------------------

    async def tick(self) -> None:
        """Fire due deadlines (wall clock only) and refresh the gauges."""
        async with self._lock:
            now = self.clock()
            if self.settings.clock == "wall" and self.ready:
                received = time.monotonic()
                outputs = [
                    (part.number, output, received)
                    for part in self.partitions.values()
                    for output in part.engine.advance(now)
                ]
                await self._flush(outputs, [])
            self.refresh_gauges(now)

    def refresh_gauges(self, now: datetime) -> None:
        metrics = self.metrics
        metrics.users_in_store.set(sum(p.engine.user_count for p in self.partitions.values()))
        metrics.deadline_index_size.set(
            sum(p.engine.deadline_count for p in self.partitions.values())
        )
        for part in self.partitions.values():
            time_lag, message_lag = metrics.partition(part.number)
            clock = part.engine.clock
            time_lag.set((now - clock).total_seconds() if clock is not None else 0.0)
            behind = 0
            for topic in self.input_types:
                tp = TopicPartition(topic, part.number)
                highwater = self.consumer.highwater(tp)
                position = part.order.next_offset(topic)
                if highwater is not None and position is not None:
                    behind += max(0, highwater - position)
            message_lag.set(behind)

    # -- rebalancing ------------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        """Wait for the batch in hand (it commits), then drop the held, uncommitted events."""
        self.ready = False
        self.metrics.ready.set(0)
        async with self._lock:
            for part in self.partitions.values():
                part.order.clear()
            self._paused.clear()
            self._committed.clear()

    async def on_assigned(self, assigned: Iterable[Any]) -> None:
        """Drop partitions no longer owned; restore new ones from the changelog."""
        self.metrics.rebalances.inc()
        numbers = {tp.partition for tp in assigned}
        async with self._lock:
            for number in sorted(set(self.partitions) - numbers):
                self.partitions.pop(number).store.close()
                self.metrics.forget_partition(number)
            for number in sorted(numbers - set(self.partitions)):
                self.partitions[number] = self._open(number)
            await self.restore(sorted(numbers))
            self.ready = True
            self.metrics.ready.set(1)
            self.refresh_gauges(self.clock())
        log.info("processing partitions %s", sorted(numbers))

    def _open(self, number: int) -> Partition:
        directory = self.settings.data_dir / self.settings.group_id
        store = open_store(self.settings.store, directory, number)
        part = Partition(number, Engine(self.policy), store, TimeOrder(self.input_types))
        for user_id, blob in store.items():
            part.engine.restore(user_id, blob)
        return part

    async def restore(self, numbers: list[int]) -> None:
        """Apply each partition's changelog tail, from its store's offset to the high watermark."""
        started = time.perf_counter()
        starts = {n: self.partitions[n].store.changelog_offset for n in numbers}
        restored: dict[int, dict[str, bytes]] = {n: {} for n in numbers}

        def apply(number: int, records: list[Any]) -> None:
            engine, latest = self.partitions[number].engine, restored[number]
            for record in records:
                user_id = record.key.decode()
                engine.restore(user_id, record.value)
                latest[user_id] = record.value

        ends = await read_to_end(self.restore_consumer, self.topics.changelog, starts, apply)
        for number, end in ends.items():
            part = self.partitions[number]
            if end < starts[number]:
                log.warning(
                    "changelog partition %d was replaced; discarding the local store", number
                )
                part.store.close()
                self.partitions[number] = self._replace(number)
                await self.restore([number])
                continue
            part.store.write(restored[number], end)
        if numbers:
            elapsed = time.perf_counter() - started
            self.metrics.restore_seconds.observe(elapsed)
            read = sum(len(latest) for latest in restored.values())
            log.info(
                "restored partitions %s in %.3f s",
                numbers,
                elapsed,
                extra={"changelog_users_read": read, "changelog_starts": starts},
            )

    def _replace(self, number: int) -> Partition:
        if self.settings.store == "rocksdb":
            RocksStore.destroy(self.settings.data_dir / self.settings.group_id, number)
        return self._open(number)
