"""One partition's challenger policy through one batch, beside the live engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.control import OverrideRecord
from schemas.events import Event
from workers.core.challenger import disagreements
from workers.core.engine import Engine, Step
from workers.stream.partitions import Partition
from workers.stream.sending import Outputs
from workers.stream.tally import Tally

log = logging.getLogger(__name__)


def apply_item(engine: Engine, item: Event | OverrideRecord) -> Step:
    """One released input (an event or an override change) applied to ``engine``; the
    deadlines of other users fire after the batch's events, in slices."""
    if isinstance(item, OverrideRecord):
        return engine.apply_overrides(item, fire_due=False)
    return engine.apply(item, fire_due=False)


class Shadow:
    """One partition's challenger through one batch: it takes each step the live engine
    takes; a failure of the challenger never reaches live: its outputs of this batch are
    dropped and it is forked again from the live state at the end of the batch."""

    def __init__(self, part: Partition) -> None:
        self.part = part
        self.outputs: Outputs = []
        self.failed = False

    def apply(self, item: Event | OverrideRecord, received_ms: int) -> None:
        self._run(lambda engine: apply_item(engine, item).outputs, received_ms)

    def advance(self, moment: datetime | None, limit: int, now_ms: int) -> None:
        self._run(lambda engine: engine.advance_due(moment, limit), now_ms)

    def _run(self, step: Callable[[Engine], list[Any]], received_ms: int) -> None:
        engine = self.part.shadow
        if self.failed or engine is None:
            return
        try:
            made = step(engine)
        except Exception:
            log.exception("the challenger policy failed on partition %d", self.part.number)
            self.failed = True
            return
        self.outputs.extend((self.part.number, output, received_ms) for output in made)

    def finish(self, tally: Tally, outputs: Outputs) -> Outputs:
        """The challenger's outputs of the batch, its disagreements with ``outputs`` (the
        live engine's of this partition) counted into ``tally``."""
        part, engine = self.part, self.part.shadow
        assert engine is not None
        if self.failed:
            tally.challenger_failures += 1
            part.shadow = None  # forked again after the batch is committed
            return []
        engine.take_counts()
        engine.discard_dirty()
        live = [output for _, output, _ in outputs]
        shadow = [output for _, output, _ in self.outputs]
        tally.disagreements += disagreements(part.engine, engine, live, shadow)
        return self.outputs
