"""Per-user state: bounded, versioned, serialised compactly.

Times are integer microseconds since the epoch (see ``timeutil``); money is integer fen
(hundredths of a yuan). Every collection is pruned by event time and capped in size, so a
user's state stays bounded whatever the length of their history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from workers.errors import LineguardError

STATE_LAYOUT_VERSION = 2
"""Layout 2 added waiting events, time-triggered output records, installment payment times
and when each paid installment was completed; layout 1 is migrated on read."""

# Hard caps that hold whatever the policy says (defence against hostile or looping producers).
MAX_DEVICES = 64
MAX_USES_PER_DEVICE = 32
MAX_CARDS = 32
MAX_BINDS_PER_CARD = 8
MAX_OUTFLOWS = 128
MAX_LOANS = 64
MAX_SETTLED = 64
MAX_INSTALLMENTS = 128
MAX_PAID_INSTALLMENTS = 64
MAX_CYCLE_ITEMS = 128
MAX_CHURN_ITEMS = 128
MAX_RECENT_FLAGS = 16
MAX_WAITING = 64
MAX_TIMED = 16
MAX_PAYMENTS = 16
MAX_SCORES = 8

LINE_OPEN = "open"
LINE_CLOSED = "closed"
LINE_RESTORE_ELIGIBLE = "restore_eligible"


class StateError(LineguardError):
    """A serialised state cannot be read (corrupt or from an unknown layout)."""


@dataclass(slots=True)
class Loan:
    loan_id: str
    drawn_at: int
    amount: int
    term_months: int
    product: str
    event_id: str
    final_due: int
    cash_out_flagged: bool = False


@dataclass(slots=True)
class Installment:
    loan_id: str
    number: int
    product: str
    due_day: int
    billed: int
    paid: int = 0
    milestones_done: int = 0
    payments: list[list[int]] = field(default_factory=list)
    """[occurred_at, fen] of the money attributed to it, in time order (bounded)."""


@dataclass(slots=True)
class Outflow:
    at: int
    amount: int
    card_id: str
    event_id: str


@dataclass(slots=True)
class UserState:
    """Everything lineguard remembers about one user."""

    first_at: int | None = None
    last_at: int | None = None
    line: str = LINE_OPEN
    cycle: int = 0
    closed_at: int | None = None
    close_reasons: list[dict[str, Any]] = field(default_factory=list)
    cooling: int = 0
    anchor: int | None = None
    awaiting_restore: bool = False
    eligible_at: int | None = None
    last_drawdown_at: int | None = None
    last_login_at: int | None = None
    score: int | None = None
    score_at: int | None = None
    scores: list[list[int]] = field(default_factory=list)
    """The latest credit scores, [occurred_at, score] in time order (bounded)."""
    seen: dict[str, int] = field(default_factory=dict)
    devices: dict[str, list[int]] = field(default_factory=dict)
    card_binds: dict[str, list[int]] = field(default_factory=dict)
    outflows: list[Outflow] = field(default_factory=list)
    loans: dict[str, Loan] = field(default_factory=dict)
    settled: dict[str, int] = field(default_factory=dict)
    installments: dict[str, Installment] = field(default_factory=dict)
    paid_installments: dict[str, list[int]] = field(default_factory=dict)
    """Installment key -> [completed_at, due_day]: when its payments reached the bill."""
    credit: dict[str, int] = field(default_factory=dict)
    quick_cycles: list[tuple[int, str]] = field(default_factory=list)
    early_settlements: list[tuple[int, str]] = field(default_factory=list)
    churn: list[tuple[int, str, str]] = field(default_factory=list)
    episodes: dict[str, int] = field(default_factory=dict)
    recent_flags: list[dict[str, Any]] = field(default_factory=list)
    next_deadline: int | None = None
    last_cleared_at: int | None = None
    """When a past-due installment was last paid off (a negative signal)."""
    waiting: list[tuple[int, str, str]] = field(default_factory=list)
    """Events dated at or after the pending deadline, held until it fires: (occurred_at,
    event_id, the event's JSON), in time order."""
    timed: list[list[Any]] = field(default_factory=list)
    """Time-triggered outputs that a late event may correct: ``[kind, code, at, key, id,
    cycle]`` with kind ``flag`` or ``close`` (code: the closure's reason codes, joined)."""


def installment_key(loan_id: str, number: int) -> str:
    return f"{loan_id}#{number}"


def serialize(state: UserState) -> bytes:
    """Compact positional JSON with a layout version in front."""
    row: list[Any] = [
        STATE_LAYOUT_VERSION,
        state.first_at,
        state.last_at,
        state.line,
        state.cycle,
        state.closed_at,
        state.close_reasons,
        state.cooling,
        state.anchor,
        state.awaiting_restore,
        state.eligible_at,
        state.last_drawdown_at,
        state.last_login_at,
        state.score,
        state.score_at,
        [list(state.seen.keys()), list(state.seen.values())],
        state.devices,
        state.card_binds,
        [[o.at, o.amount, o.card_id, o.event_id] for o in state.outflows],
        {
            k: [
                v.drawn_at,
                v.amount,
                v.term_months,
                v.product,
                v.event_id,
                v.final_due,
                v.cash_out_flagged,
            ]
            for k, v in state.loans.items()
        },
        state.settled,
        {
            k: [
                i.loan_id,
                i.number,
                i.product,
                i.due_day,
                i.billed,
                i.paid,
                i.milestones_done,
                i.payments,
            ]
            for k, i in state.installments.items()
        },
        state.paid_installments,
        state.credit,
        state.quick_cycles,
        state.early_settlements,
        state.churn,
        state.episodes,
        state.recent_flags,
        state.next_deadline,
        state.last_cleared_at,
        state.waiting,
        state.timed,
        state.scores,
    ]
    return orjson.dumps(row)


def deserialize(blob: bytes) -> UserState:
    try:
        row = orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"state is not valid JSON: {exc}") from exc
    version = row[0] if isinstance(row, list) and row else None
    if version == 1:
        row = _migrate_1_to_2(row)
    elif version != STATE_LAYOUT_VERSION:
        raise StateError(f"unknown state layout version {version!r}")
    try:
        (
            _version,
            first_at,
            last_at,
            line,
            cycle,
            closed_at,
            close_reasons,
            cooling,
            anchor,
            awaiting_restore,
            eligible_at,
            last_drawdown_at,
            last_login_at,
            score,
            score_at,
            seen,
            devices,
            card_binds,
            outflows,
            loans,
            settled,
            installments,
            paid_installments,
            credit,
            quick_cycles,
            early_settlements,
            churn,
            episodes,
            recent_flags,
            next_deadline,
            last_cleared_at,
            waiting,
            timed,
            scores,
        ) = row
        return UserState(
            first_at=first_at,
            last_at=last_at,
            line=line,
            cycle=cycle,
            closed_at=closed_at,
            close_reasons=close_reasons,
            cooling=cooling,
            anchor=anchor,
            awaiting_restore=awaiting_restore,
            eligible_at=eligible_at,
            last_drawdown_at=last_drawdown_at,
            last_login_at=last_login_at,
            score=score,
            score_at=score_at,
            seen=dict(zip(seen[0], seen[1], strict=True)),
            devices=devices,
            card_binds=card_binds,
            outflows=[Outflow(*o) for o in outflows],
            loans={k: Loan(k, *v) for k, v in loans.items()},
            settled=settled,
            installments={k: Installment(*v) for k, v in installments.items()},
            paid_installments={k: list(v) for k, v in paid_installments.items()},
            credit=credit,
            quick_cycles=[(t, s) for t, s in quick_cycles],
            early_settlements=[(t, s) for t, s in early_settlements],
            churn=[(t, e, w) for t, e, w in churn],
            episodes=episodes,
            recent_flags=recent_flags,
            next_deadline=next_deadline,
            last_cleared_at=last_cleared_at,
            waiting=[(t, event_id, text) for t, event_id, text in waiting],
            timed=timed,
            scores=scores,
        )
    except (TypeError, ValueError) as exc:
        raise StateError(f"state does not match layout {STATE_LAYOUT_VERSION}: {exc}") from exc


def _migrate_1_to_2(row: list[Any]) -> list[Any]:
    """Layout 1 to 2: installments gain payment times, a paid installment records
    [completed_at, due_day] (due day unknown: -1), four fields appended (the latest score
    starts the score history)."""
    if len(row) != 30:
        raise StateError(f"state does not match layout 1: {len(row)} fields")
    migrated = list(row)
    # Money already attributed is taken as paid before anything that could still be corrected.
    migrated[21] = {
        key: [*item, [[0, item[5]]] if item[5] else []] for key, item in row[21].items()
    }
    migrated[22] = {key: [at, -1] for key, at in row[22].items()}
    score, score_at = row[13], row[14]
    migrated.extend([None, [], [], [] if score is None else [[score_at, score]]])
    migrated[0] = STATE_LAYOUT_VERSION
    return migrated
