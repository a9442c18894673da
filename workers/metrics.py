"""Every Prometheus metric of the worker, built in one place on an injectable registry.

Dashboards and alerts are built from these exact names. No label carries a user id;
label children are bound once (per type, per partition, per reason), not per event.

``lineguard_event_to_decision_latency_seconds`` is the worker's processing latency of
an output: from the moment the worker received the triggering record from the broker
(or the timer tick, for time-triggered outputs) to the moment the broker acknowledged
the flag or decision. It is meaningful under both clocks, unlike ``occurred_at``,
which is hours or months old when history is replayed through Kafka.
"""

from __future__ import annotations

from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.events import EVENT_TYPES
from schemas.outputs import REASON_CODES, Signal

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RESTORE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """The worker's metrics; one instance per process (or per test, with its own registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "lineguard_events_consumed",
            "Valid events applied to the core (after their time order released them), by type.",
            ["type"],
            registry=r,
        )
        self.decisions = Counter(
            "lineguard_decisions",
            "Decisions acknowledged by the broker, by decision and reason code.",
            ["decision", "reason"],
            registry=r,
        )
        self.flags = Counter(
            "lineguard_flags",
            "Flags acknowledged by the broker, by signal.",
            ["signal"],
            registry=r,
        )
        self.dead_letters = Counter(
            "lineguard_dead_letters",
            "Messages sent to the dead-letter topic, by error kind.",
            ["error_kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "lineguard_duplicates", "Events ignored because their event_id was seen.", registry=r
        )
        self.latency = Histogram(
            "lineguard_event_to_decision_latency_seconds",
            "From receiving the trigger record (or tick) to the broker's ack of the output.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_time_lag = Gauge(
            "lineguard_partition_event_time_lag_seconds",
            "Wall time minus the partition's event-time high-water mark.",
            ["partition"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "lineguard_consumer_lag_messages",
            "Input records not yet consumed: end offset minus position, summed over topics.",
            ["partition"],
            registry=r,
        )
        self.deadline_index_size = Gauge(
            "lineguard_deadline_index_size", "Deadlines held by this worker's engines.", registry=r
        )
        self.users_in_store = Gauge(
            "lineguard_users_in_store",
            "Users whose state this worker holds, in memory or in its local store.",
            registry=r,
        )
        self.restore_seconds = Histogram(
            "lineguard_changelog_restore_seconds",
            "Time to restore one partition's state from the changelog.",
            buckets=_RESTORE_BUCKETS,
            registry=r,
        )
        self.rebalances = Counter(
            "lineguard_rebalances", "Partition assignments received.", registry=r
        )
        self.batch_duration = Histogram(
            "lineguard_batch_duration_seconds",
            "One batch: decode, decide, outputs and changelog acknowledged, offsets committed.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ready = Gauge("lineguard_ready", "1 when processing, 0 while restoring.", registry=r)
        self.late_events = Counter(
            "lineguard_late_events",
            "Events applied after the clock had passed their occurred_at plus grace, by type.",
            ["type"],
            registry=r,
        )
        self.state_cap_drops = Counter(
            "lineguard_state_cap_drops",
            "Items a per-user state cap forced out (a dropped bill can hide an overdue), by what.",
            ["what"],
            registry=r,
        )
        self.flag_retractions = Counter(
            "lineguard_flag_retractions",
            "Time-triggered flags retracted because a late event disproved them, by signal.",
            ["signal"],
            registry=r,
        )
        self.live_users = Gauge(
            "lineguard_live_users",
            "User states held as live objects (at most LINEGUARD_LIVE_USERS).",
            registry=r,
        )
        self.stored_users = Gauge(
            "lineguard_stored_users",
            "Users whose state rests in the local RocksDB store, read back on first use.",
            registry=r,
        )
        self.store_reads = Counter(
            "lineguard_store_reads",
            "User states read back from the local store (used while not in memory).",
            registry=r,
        )
        self.waiting_events = Gauge(
            "lineguard_waiting_events",
            "Events held in users' states until a deadline's grace is over.",
            registry=r,
        )
        self.batch_in_flight_seconds = Gauge(
            "lineguard_batch_in_flight_seconds",
            "How long the batch in hand has been running (0 between batches): a stalled broker.",
            registry=r,
        )
        self.fetch_silence_seconds = Gauge(
            "lineguard_fetch_silence_seconds",
            "Seconds since the brokers last answered a fetch for this worker's partitions.",
            registry=r,
        )
        self.batch_failures = Counter(
            "lineguard_batch_failures",
            "Batches rolled back because a send, the changelog or a commit failed.",
            registry=r,
        )
        self.build_info = Gauge(
            "lineguard_build_info",
            "Always 1; the labels carry the version and the policy version.",
            ["version", "policy_version"],
            registry=r,
        )
        self.policy_info = Gauge(
            "lineguard_policy_info",
            "Always 1; the labels name the policies this worker runs (name: live, and challenger "
            "while one is published) and their versions.",
            ["name", "version"],
            registry=r,
        )
        self.policy_switches = Counter(
            "lineguard_policy_switches",
            "Switches to a newly published live policy, made between batches.",
            registry=r,
        )
        self.challenger_decisions = Counter(
            "lineguard_challenger_decisions",
            "Decisions the challenger policy would have made (lineguard.shadow-decisions), "
            "by decision and reason code; never acted on.",
            ["decision", "reason"],
            registry=r,
        )
        self.challenger_disagreements = Counter(
            "lineguard_challenger_disagreements",
            "Closures one policy made and the other had not at the same point "
            "(kind: challenger_only or live_only), by reason code.",
            ["kind", "reason"],
            registry=r,
        )
        self.challenger_failures = Counter(
            "lineguard_challenger_failures",
            "Batches in which the challenger policy failed on a partition: its outputs there "
            "were dropped and it was forked again from the live state; live went on.",
            registry=r,
        )
        self.policy_refused = Counter(
            "lineguard_policy_refused",
            "Records of the policies topic refused (invalid, or a version reused for other "
            "content); the running policy stays.",
            registry=r,
        )
        self.override_changes = Counter(
            "lineguard_override_changes",
            "Per-user override changes applied (records of the overrides topic, tombstones "
            "included; stale or repeated ones not counted).",
            registry=r,
        )
        self.consumed_by_type = {t: self.events_consumed.labels(type=t) for t in EVENT_TYPES}
        # Series that exist from the start, so dashboards and alerts read 0 rather than nothing.
        for event_type in EVENT_TYPES:
            self.late_events.labels(event_type)
        for signal in get_args(Signal):
            self.flag_retractions.labels(signal)
        for what in ("installments", "waiting_events"):  # the drops that can hide a closure
            self.state_cap_drops.labels(what)
        for code in REASON_CODES:  # zero before any challenger runs: panels and alerts read it
            self.challenger_decisions.labels("close_line", code)
            for kind in ("challenger_only", "live_only"):
                self.challenger_disagreements.labels(kind, code)
        self._decision_children: dict[tuple[str, str], Counter] = {}
        self._flag_children: dict[str, Counter] = {}
        self._dead_letter_children: dict[str, Counter] = {}
        self._partition_children: dict[int, tuple[Gauge, Gauge]] = {}
        self._version = "unknown"
        self._live_version = "unknown"
        self._challenger_version: str | None = None

    def set_build(self, version: str, policy_version: str) -> None:
        self._version = version
        self.build_info.clear()
        self.build_info.labels(version=version, policy_version=policy_version).set(1)
        self._live_version = policy_version
        self._set_policy_info()

    def set_policy(self, policy_version: str) -> None:
        """The live policy changed: same build, another policy version."""
        self.set_build(self._version, policy_version)

    def set_challenger(self, policy_version: str | None) -> None:
        """The challenger policy now run (None: none)."""
        self._challenger_version = policy_version
        self._set_policy_info()

    def _set_policy_info(self) -> None:
        self.policy_info.clear()
        self.policy_info.labels(name="live", version=self._live_version).set(1)
        if self._challenger_version is not None:
            self.policy_info.labels(name="challenger", version=self._challenger_version).set(1)

    def decision(self, decision: str, reason: str) -> Counter:
        key = (decision, reason)
        child = self._decision_children.get(key)
        if child is None:
            child = self._decision_children[key] = self.decisions.labels(*key)
        return child

    def flag(self, signal: str) -> Counter:
        child = self._flag_children.get(signal)
        if child is None:
            child = self._flag_children[signal] = self.flags.labels(signal)
        return child

    def dead_letter(self, error_kind: str) -> Counter:
        child = self._dead_letter_children.get(error_kind)
        if child is None:
            child = self._dead_letter_children[error_kind] = self.dead_letters.labels(error_kind)
        return child

    def partition(self, partition: int) -> tuple[Gauge, Gauge]:
        """(event-time lag, consumer lag) children of one partition."""
        children = self._partition_children.get(partition)
        if children is None:
            label = str(partition)
            children = (self.event_time_lag.labels(label), self.consumer_lag.labels(label))
            self._partition_children[partition] = children
        return children

    def forget_partition(self, partition: int) -> None:
        """Drop a revoked partition's series so dashboards do not show stale lag."""
        if self._partition_children.pop(partition, None) is not None:
            self.event_time_lag.remove(str(partition))
            self.consumer_lag.remove(str(partition))
