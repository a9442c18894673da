"""A challenger policy beside the live one: where their closures disagree.

Both engines see the same inputs, in the same order; after each step (a batch in the
worker, an event in ``replay``) every ``close_line`` either made is checked against the
other engine's state at that point: a closure the other policy has not made (that user's
line has been closed fewer times there) is a disagreement, counted once per reason code
of the closure, as ``challenger_only`` (the challenger would close, live does not) or
``live_only`` (the reverse). A closure the other policy makes later, for the same cycle,
is not counted again: each disagreement is counted when it first appears.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from schemas.outputs import Decision, Output
from workers.core.engine import Engine
from workers.core.lifecycle import stable_id

CHALLENGER_ONLY = "challenger_only"
LIVE_ONLY = "live_only"


def disagreements(
    live: Engine,
    challenger: Engine,
    live_outputs: Iterable[Output],
    challenger_outputs: Iterable[Output],
) -> Counter[tuple[str, str]]:
    """(kind, reason code) -> closures of one policy the other has not made (see above)."""
    counts: Counter[tuple[str, str]] = Counter()
    sides = (
        (challenger_outputs, challenger, live, CHALLENGER_ONLY),
        (live_outputs, live, challenger, LIVE_ONLY),
    )
    for outputs, own, other, kind in sides:
        for output in outputs:
            if not isinstance(output, Decision) or output.decision != "close_line":
                continue
            cycle = _cycle(own, output)
            if cycle is None or other.closed_cycles(output.user_id) >= cycle:
                continue
            for reason in output.reasons:
                counts[(kind, reason.code)] += 1
    return counts


def _cycle(engine: Engine, closure: Decision) -> int | None:
    """Which of the user's closures (1, 2, ...) ``closure`` is, by its deterministic id."""
    user_id = closure.user_id
    for cycle in range(engine.closed_cycles(user_id), 0, -1):
        if stable_id(user_id, "close_line", cycle) == closure.decision_id:
            return cycle
    return None
