"""What one batch did, and how it reaches the metrics once the batch is committed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from schemas.outputs import Decision
from workers.codec import Rejected
from workers.metrics import Metrics
from workers.stream.sending import Outputs


@dataclass
class Tally:
    """What one batch did, counted into the metrics only once it is committed."""

    consumed: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    late: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)
    override_changes: int = 0
    disagreements: Counter[tuple[str, str]] = field(default_factory=Counter)
    challenger_failures: int = 0


def count_committed(
    metrics: Metrics,
    tally: Tally,
    outputs: Outputs,
    dead: list[tuple[Any, Rejected]],
    acked: float,
) -> None:
    """Count a committed batch: its events, outputs (live latency from each trigger's
    receipt to ``acked``, wall seconds), the challenger's apart, and its dead letters."""
    for event_type, n in tally.consumed.items():
        metrics.consumed_by_type[event_type].inc(n)
    if tally.override_changes:
        metrics.override_changes.inc(tally.override_changes)
    if tally.duplicates:
        metrics.duplicates.inc(tally.duplicates)
    for event_type, n in tally.late.items():
        metrics.late_events.labels(event_type).inc(n)
    for what, n in tally.drops.items():
        metrics.state_cap_drops.labels(what).inc(n)
    for (kind, code), n in tally.disagreements.items():
        metrics.challenger_disagreements.labels(kind, code).inc(n)
    if tally.challenger_failures:
        metrics.challenger_failures.inc(tally.challenger_failures)
    acked_ms = acked * 1000
    for _, output, received_ms in outputs:
        if output.policy_role == "challenger":
            if isinstance(output, Decision):
                for cause in output.reasons or ():
                    metrics.challenger_decisions.labels(output.decision, cause.code).inc()
            continue
        metrics.latency.observe(max(0.0, (acked_ms - received_ms) / 1000))
        if isinstance(output, Decision):
            for reason in output.reasons or ():
                metrics.decision(output.decision, reason.code).inc()
        elif output.retracts is not None:
            metrics.flag_retractions.labels(output.signal).inc()
        else:
            metrics.flag(output.signal).inc()
    for _, rejected in dead:
        metrics.dead_letter(rejected.error_kind).inc()
