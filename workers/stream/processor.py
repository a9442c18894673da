"""The hot path: a batch of records in, state and outputs out, offsets committed last.

One batch is a transaction: fetch records, decode at the edge (bad records become dead
letters), release each partition's events in time order, apply them to the partition's
engine and fire the deadlines due, send the flags, decisions and dead letters and wait for
the broker's acks, send each changed user's state to the changelog and wait again, save it
in the store, commit the input offsets, and only then count it in the metrics. If anything
fails in between (a send, the changelog, a commit, a defect in the core) the partitions
are rolled back: held events dropped, the engines rebuilt from the store and changelog
(which hold only acknowledged work), the inputs re-read from the committed offsets. A core
defect on one event dead-letters that event on the second pass; everyone else's outputs
go out. Redelivered inputs yield outputs with the same deterministic ids.

Deadlines fire here too, for both clocks, so no other code path (the timer included) ever
writes state: under the wall clock every poll moves the engines to wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from schemas.control import OverrideRecord
from workers.codec import Rejected
from workers.core.engine import Engine
from workers.core.policy import Policy
from workers.metrics import Metrics
from workers.policies import Adopted
from workers.settings import Settings
from workers.stream.intake import RecordKey, decode_batch
from workers.stream.ordering import Held, TimeOrder
from workers.stream.partitions import PartitionSet
from workers.stream.policy_feed import PolicyFeed
from workers.stream.sending import Outputs, send_batch
from workers.stream.shadow import Shadow, apply_item
from workers.stream.tally import Tally, count_committed

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


POSITION_WAIT = 0.05
"""Seconds a batch waits for a newly assigned input's fetch position before going on."""


def wall_clock() -> datetime:
    return datetime.now(UTC)


class CoreDefect(Exception):
    """The decision core raised on one event: the batch is rolled back and that event
    becomes an ``internal`` dead letter on the next pass."""

    def __init__(self, held: Held, exc: Exception) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.key: RecordKey = (held.topic, held.record.partition, held.offset)


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
        policies: PolicyFeed | None = None,
    ) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.consumed = settings.topics.consumed()
        """The six inputs and the overrides: aligned in time order, committed together."""
        self.metrics = metrics
        self.consumer = consumer
        self.producer = producer
        self.clock = clock
        self.policies = policies
        self._next_policy: Adopted | None = None
        self._next_challenger: tuple[Adopted | None] | None = None
        """A challenger change to make at the next batch boundary: (the record, or None
        when withdrawn)."""
        self.parts = PartitionSet(settings, policy, metrics, restore_consumer, Engine)
        self.ready = False
        self.failing_since: float | None = None
        """Monotonic time of the first of the current run of failed batches (None: fine)."""
        self.batch_started: float | None = None
        self._lock = asyncio.Lock()
        self._committed: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._poison: dict[RecordKey, str] = {}
        self._broken = False
        """The engines must be rebuilt from the store and changelog before the next batch."""
        self._assignment: set[int] | None = None
        """The latest assignment, not yet taken (opened and restored) by the batch loop."""
        self._awaiting_assignment = True
        """Revoked (or not started): no batch until an assignment is taken."""
        self._reread = False
        """A fetched batch was dropped: the inputs must be read again from the committed offsets."""

    @property
    def partitions(self) -> dict[int, Any]:
        return self.parts.partitions

    # -- the batch cycle ------------------------------------------------------------

    async def poll(self) -> int:
        """Fetch and process one batch; returns the number of records consumed.

        Raises when the batch failed (after rolling it back): the caller backs off."""
        if self._must_recover():
            async with self._lock:
                await self._recover()
        if self._awaiting_assignment:
            await asyncio.sleep(0.05)  # the rebalance listener has not handed one over yet
            return 0
        held = any(len(part.order) for part in self.partitions.values())
        # Held events wait for a fetch to see their quiet topics idle: poll again soon, but
        # never in a busy loop (getmany with no timeout would starve the fetcher).
        timeout = max(5, min(200, self.settings.align_wait_ms)) if held else 200
        batch = await self.consumer.getmany(
            timeout_ms=timeout, max_records=self.settings.max_batch_records
        )
        now = self.clock()
        if self.policies is not None:
            changed = await self.policies.poll()
            if "live" in changed:
                self._next_policy = self.policies.live
            if "challenger" in changed:
                self._next_challenger = (self.policies.challenger,)
        if self.failing_since is None and not self._broken:
            # Only after a committed batch: a failed one is retried under its own policies.
            if self._next_policy is not None:
                async with self._lock:
                    self._switch(self._next_policy.policy, self._next_policy.offset)
                    self._next_policy = None
            if self._next_challenger is not None:
                async with self._lock:
                    self._switch_challenger(*self._next_challenger)
                    self._next_challenger = None
        if not batch and not held and not self._deadlines_due(now):
            return 0
        async with self._lock:
            if self._must_recover() or self._awaiting_assignment:
                # Assigned, revoked or failed during the fetch: the batch is read again.
                self._reread = self._reread or bool(batch)
                if self._must_recover():
                    await self._recover()
                return 0
            started = self.batch_started = time.perf_counter()
            try:
                count = await self._process(batch, now)
            except CoreDefect as defect:
                log.error("the decision core failed on one event; rolling the batch back")
                self._poison[defect.key] = str(defect)
                await self._rollback()
                return 0
            except Exception:
                self._broken = True
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                self.metrics.batch_failures.inc()
                raise
            finally:
                self.batch_started = None
            self.failing_since = None
            self.metrics.batch_duration.observe(time.perf_counter() - started)
        return count

    def _deadlines_due(self, now: datetime) -> bool:
        moment = now if self.settings.clock == "wall" else None
        return any(
            part.engine.has_due(moment) or (part.shadow is not None and part.shadow.has_due(moment))
            for part in self.partitions.values()
        )

    async def _process(self, batch: dict[Any, list[Any]], now: datetime) -> int:
        tally = Tally()
        dead: list[tuple[Any, Rejected]] = []
        count = decode_batch(batch, self.partitions, self.settings, self._poison, now, dead)
        outputs: Outputs = []
        wall = self.settings.clock == "wall"
        for part in self.partitions.values():
            await self._learn_positions(part.number, part.order)
            released = part.order.release(self._idle_since(part.number))
            shadow = Shadow(part) if part.shadow is not None else None
            first = len(outputs)
            for held in released:
                item = held.event
                try:
                    step = apply_item(part.engine, item)
                except Exception as exc:  # a defect: roll back, dead-letter it next pass
                    what = "an override change" if isinstance(item, OverrideRecord) else "event"
                    name = "" if isinstance(item, OverrideRecord) else f" {item.event_id}"
                    log.exception("the decision core failed on %s%s", what, name)
                    raise CoreDefect(held, exc) from exc
                if isinstance(item, OverrideRecord):
                    if not step.duplicate:
                        tally.override_changes += 1
                        _log_change(item, held, part.number)
                else:
                    tally.consumed[item.type] += 1
                tally.duplicates += step.duplicate
                outputs.extend((part.number, output, held.received_ms) for output in step.outputs)
                if shadow is not None:
                    shadow.apply(item, held.received_ms)
            moment, limit = now if wall else None, self.settings.deadline_slice
            fired = part.engine.advance_due(moment, limit)
            now_ms = int(time.time() * 1000)
            outputs.extend((part.number, output, now_ms) for output in fired)
            drops, late = part.engine.take_counts()
            tally.drops += drops
            tally.late += late
            if shadow is not None:
                shadow.advance(moment, limit, now_ms)
                outputs.extend(shadow.finish(tally, outputs[first:]))
        acked = await send_batch(
            self.producer,
            self.topics,
            outputs,
            dead,
            self.parts,
            self.settings.dead_letter_max_bytes,
        )
        await self._commit()
        for part in self.partitions.values():
            if part.shadow is None and self.parts.challenger is not None:
                self.parts.fork(part)  # the challenger failed in this batch: start it again
        count_committed(self.metrics, tally, outputs, dead, acked)
        for key in [key for key in self._poison if key[1] in self.partitions]:
            if key[2] < self._committed.get(TopicPartition(key[0], key[1]), -1):
                del self._poison[key]  # dead-lettered and committed
        self._apply_backpressure()
        return count

    async def _learn_positions(self, number: int, order: TimeOrder) -> None:
        """Positions of inputs that have shown no record yet (to tell when they are idle)."""
        for topic in self.consumed:
            if order.next_offset(topic) is None:
                # Never wait on the group under the lock: a rebalance's revocation waits for
                # the lock, and a position not known yet may wait for that rebalance. Not
                # known yet: the topic is not idle; the next batch asks again.
                try:
                    position = await asyncio.wait_for(
                        self.consumer.position(TopicPartition(topic, number)), POSITION_WAIT
                    )
                except (IllegalStateError, TimeoutError):
                    continue  # no longer assigned, or no position yet
                order.skip(topic, position - 1)

    def _idle_since(self, number: int) -> Callable[[str], int | None]:
        """For the alignment: when each input of partition ``number`` was last seen with no
        unread records (None: it has some, or nothing is known yet)."""
        consumer, order = self.consumer, self.partitions[number].order

        def idle_since(topic: str) -> int | None:
            tp = TopicPartition(topic, number)
            highwater, position = consumer.highwater(tp), order.next_offset(topic)
            if highwater is None or position is None or position < highwater:
                return None
            polled: int | None = consumer.last_poll_timestamp(tp)
            return polled

        return idle_since

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
            # Outputs and changelog are acknowledged: the redelivered inputs are duplicates.
            log.warning("offset commit refused during a rebalance: %s", exc)
            return
        self._committed.update(offsets)

    def _apply_backpressure(self) -> None:
        """Pause inputs whose records pile up waiting for a slower topic; resume them after."""
        limit = self.settings.max_pending_per_partition
        for part in self.partitions.values():
            for topic in self.consumed:
                tp = TopicPartition(topic, part.number)
                held = part.order.held_count(topic)
                if held > limit and tp not in self._paused:
                    self.consumer.pause(tp)
                    self._paused.add(tp)
                elif held <= limit // 2 and tp in self._paused:
                    self.consumer.resume(tp)
                    self._paused.discard(tp)

    def start_with(self, policy: Policy, challenger: Policy | None = None) -> None:
        """The policies to start with (before the first batch)."""
        self.parts.policy = policy
        for part in self.partitions.values():
            part.engine.set_policy(policy)
        self.metrics.set_policy(policy.version)
        self._set_challenger(challenger)
        if challenger is not None:
            log.warning("running challenger policy %s beside the live one", challenger.version)

    def _switch_challenger(self, adopted: Adopted | None) -> None:
        """Run the challenger of ``adopted`` (None: none) from the next batch on, forked from
        each partition's live state as it is now (called between batches, under the lock)."""
        challenger = None if adopted is None else adopted.policy
        old = self.parts.challenger
        if challenger == old:
            return
        self._set_challenger(challenger)
        log.warning(
            "challenger policy %s -> %s between batches",
            "none" if old is None else old.version,
            "none" if challenger is None else challenger.version,
            extra={
                "policy_offset": None if adopted is None else adopted.offset,
                "committed_offsets": {
                    f"{tp.topic}/{tp.partition}": o for tp, o in sorted(self._committed.items())
                },
            },
        )

    def _set_challenger(self, challenger: Policy | None) -> None:
        self.parts.challenger = challenger
        for part in self.partitions.values():
            self.parts.fork(part)
        self.metrics.set_challenger(None if challenger is None else challenger.version)

    def _switch(self, policy: Policy, offset: int) -> None:
        """Run ``policy`` from the next batch on (called between batches, under the lock)."""
        old = self.parts.policy
        if policy == old:
            return
        self.parts.policy = policy
        for part in self.partitions.values():
            part.engine.set_policy(policy)
        self.metrics.policy_switches.inc()
        self.metrics.set_policy(policy.version)
        log.warning(
            "switched the live policy from %s to %s between batches",
            old.version,
            policy.version,
            extra={
                "policy_offset": offset,
                "committed_offsets": {
                    f"{tp.topic}/{tp.partition}": o for tp, o in sorted(self._committed.items())
                },
                "partition_clocks": {
                    number: part.engine.clock.isoformat() if part.engine.clock else None
                    for number, part in sorted(self.partitions.items())
                },
            },
        )

    # -- failures -----------------------------------------------------------------------

    async def _rollback(self) -> None:
        """As if the batch had never been applied: drop what is held, rebuild the engines
        from what was acknowledged, re-read the inputs from the committed offsets."""
        self._broken = True
        for part in self.partitions.values():
            part.order.clear()
        if self._paused:
            self.consumer.resume(*self._paused)
            self._paused.clear()
        await self._recover()

    def _must_recover(self) -> bool:
        """An assignment to take, or (while assigned) engines to rebuild or inputs to re-read,
        also when the last attempt failed half-way."""
        pending = self._broken or self._reread
        return self._assignment is not None or (pending and not self._awaiting_assignment)

    async def _recover(self) -> None:
        """Take the latest assignment, if any (drop the partitions no longer owned, open and
        restore the new ones); after a failure or a dropped batch, read every owned input
        again from its committed offset, and after a failure rebuild every engine."""
        assignment = self._assignment
        if assignment is not None:
            try:
                await self.parts.assign(assignment, self._new_order)
            except Exception:
                log.exception("restoring partitions %s failed; retrying", sorted(assignment))
                self._broken = True  # partly opened or restored: all rebuilt on the retry
                raise
            self._assignment, self._awaiting_assignment = None, False
        numbers = sorted(self.partitions)
        reread = numbers if self._broken or self._reread else []
        for number in reread:
            self.partitions[number].order.clear()
            for topic in self.consumed:
                tp = TopicPartition(topic, number)
                committed = self._committed.get(tp)
                if committed is None:
                    # Bounded for the same reason: on timeout the rollback fails, releases
                    # the lock and is retried with back-off.
                    committed = await asyncio.wait_for(
                        self.consumer.committed(tp), self.settings.stall_seconds
                    )
                if committed is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)
        self._reread = False
        if self._broken:
            await self.parts.rebuild(numbers)
            self._broken = False
            log.info("rolled back partitions %s to their last committed state", numbers)
        if not self.ready:
            self._set_ready()
            log.info("processing partitions %s", numbers)

    # -- gauges -----------------------------------------------------------------------------

    def refresh_gauges(self, now: datetime) -> None:
        metrics = self.metrics
        parts = self.partitions.values()
        engines = [part.engine for part in parts]
        metrics.users_in_store.set(
            sum(p.store.user_count if p.store.holds_states else p.engine.user_count for p in parts)
        )
        metrics.stored_users.set(sum(part.store.user_count for part in parts))
        metrics.live_users.set(sum(engine.live_user_count for engine in engines))
        metrics.deadline_index_size.set(sum(engine.deadline_count for engine in engines))
        metrics.waiting_events.set(sum(engine.waiting_count for engine in engines))
        started = self.batch_started
        metrics.batch_in_flight_seconds.set(
            time.perf_counter() - started if started is not None else 0.0
        )
        metrics.fetch_silence_seconds.set(self.fetch_silence() or 0.0)
        for part in self.partitions.values():
            time_lag, message_lag = metrics.partition(part.number)
            clock = part.engine.clock
            time_lag.set((now - clock).total_seconds() if clock is not None else 0.0)
            behind = 0
            for topic in self.consumed:
                tp = TopicPartition(topic, part.number)
                highwater = self._highwater(tp)
                position = part.order.next_offset(topic)
                if highwater is not None and position is not None:
                    behind += max(0, highwater - position)
            message_lag.set(behind)

    def _highwater(self, tp: TopicPartition) -> int | None:
        """The partition's high watermark, None when unknown or no longer assigned (a
        rebalance revoked it; the batch loop has not yet taken the new assignment)."""
        try:
            highwater: int | None = self.consumer.highwater(tp)
        except AssertionError:  # aiokafka asserts the partition is assigned
            return None
        return highwater

    def fetch_silence(self) -> float | None:
        """Seconds since the brokers last answered a fetch for any assigned input partition
        (a healthy broker answers at least every ``fetch_max_wait_ms``); None before the
        first answer."""
        consumer, latest = self.consumer, None
        for number in self.partitions:
            for topic in self.consumed:
                with contextlib.suppress(AssertionError):  # revoked in the meantime
                    polled = consumer.last_poll_timestamp(TopicPartition(topic, number))
                    if polled is not None and (latest is None or polled > latest):
                        latest = polled
        return None if latest is None else max(0.0, time.time() - latest / 1000)

    def stalled(self) -> str | None:
        """Why this worker is not making progress, or None: a batch in flight for longer
        than ``stall_seconds`` (the broker does not answer), or failing batches."""
        limit = self.settings.stall_seconds
        started = self.batch_started
        if started is not None and time.perf_counter() - started > limit:
            return f"a batch has waited on the brokers for over {limit:g} s"
        silence = self.fetch_silence()
        if silence is not None and silence > limit:
            return f"no fetch has been answered by the brokers for over {limit:g} s"
        if self.failing_since is not None:
            return "batches are failing and being retried (see the log)"
        return None

    # -- rebalancing ------------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[Any]) -> None:
        """Wait for the batch in hand (it commits), then drop the held, uncommitted events;
        no batch runs until the next assignment is taken."""
        self.ready = False
        self.metrics.ready.set(0)
        async with self._lock:
            self._assignment, self._awaiting_assignment = None, True
            for part in self.partitions.values():
                part.order.clear()
            self._paused.clear()
            self._committed.clear()

    async def on_assigned(self, assigned: Iterable[Any]) -> None:
        """Hand the assignment to the batch loop, which drops the partitions no longer owned
        and restores the new ones from the changelog before its next batch.

        Not here: aiokafka sends no heartbeat while this callback runs (it stops them before
        rejoining and starts them again after it), so a restore longer than the session
        got the worker evicted while it went on to process partitions given to another."""
        self.metrics.rebalances.inc()
        numbers = {tp.partition for tp in assigned}
        log.info("assigned partitions %s; opening and restoring them", sorted(numbers))
        self._assignment = numbers

    def _set_ready(self) -> None:
        self.ready = True
        self.metrics.ready.set(1)
        self.refresh_gauges(self.clock())

    def _new_order(self) -> TimeOrder:
        return TimeOrder(self.consumed, self.settings.align_wait_ms)


def _log_change(record: OverrideRecord, held: Held, partition: int) -> None:
    """Every override change is logged with its actor (never the user id at INFO)."""
    log.info(
        "applied an override change by %s: %d overrides now",
        record.changed_by,
        len(record.overrides),
        extra={
            "actor": record.changed_by,
            "changed_at": record.changed_at.isoformat(),
            "overrides": [
                {"id": o.id, "kind": o.kind, "rule": o.rule, "actor": o.actor}
                for o in record.overrides
            ],
            "partition": partition,
            "offset": held.offset,
        },
    )
