"""The per-event work every peer does, the same as the worker's core: decode the record at
the edge, load the user's state, fold the event into it, and hand back the new state and
the encoded outputs. Deadlines are not fired: a peer has no deadline index (the worker's
figure includes them)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from workers.codec import Rejected, decode, encode_output
from workers.core.compiled import compile_policy
from workers.core.decide import decide
from workers.core.policy import load_policy
from workers.core.state import UserState, deserialize, serialize

RULES = compile_policy(load_policy())


def fold(
    value: bytes | None, key: bytes | None, event_type: str, blob: bytes | None
) -> tuple[bytes, list[bytes]] | None:
    """The user's new state and the encoded outputs, or None for a record that is a dead
    letter (no state change)."""
    event = decode(value, key, event_type)
    if isinstance(event, Rejected):
        return None
    state = deserialize(blob) if blob else UserState()
    _, outputs, _ = decide(state, event, RULES)
    return serialize(state), [encode_output(output) for output in outputs]


class Clock:
    """Counts processed records; times them from the first to the ``total``-th."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.outputs = 0
        self.started: float | None = None
        self.seconds: float | None = None

    def tick(self, outputs: int) -> bool:
        """Count one record; True once the last one is in."""
        if self.started is None:
            self.started = time.perf_counter()
        self.count += 1
        self.outputs += outputs
        if self.count >= self.total and self.seconds is None:
            self.seconds = time.perf_counter() - self.started
            return True
        return False

    def write(self, path: Path) -> None:
        seconds = self.seconds or 0.0
        result = {
            "events": self.count,
            "outputs": self.outputs,
            "seconds": round(seconds, 3),
            "events_per_s": round(self.count / seconds) if seconds else 0,
        }
        path.write_text(json.dumps(result))
