"""A state written by an earlier layout restores, and the user's story goes on as if the
whole history had run on this release; the layout cannot change without a new version.

``fixtures/state-layout-1.json`` was written by layout 1 for the history in ``HISTORY``
after ``replay --until CUT``: an open line, a paid and an unpaid installment past three
overdue milestones, devices, a card, a credit score and a phone change.
``fixtures/state-layout-1-read-by-2.json`` is that state as layout 2 read and wrote it back.
``fixtures/state-layout-2.json`` was written by layout 2, ``fixtures/state-layout-3.json``
by layout 3, ``fixtures/state-layout-4.json`` by layout 4 and ``fixtures/state-layout-5.json``
by layout 5 for ``full_state()``: every field of every record set (that layout had).
"""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.core.scenario import Timeline, at, bill, card, drawdown, login, outflow, pay, profile
from tests.core.scenario import score as credit_score
from workers.core.engine import Engine
from workers.core.state import (
    DECISION_FIELDS,
    FACT_FIELDS,
    MIGRATIONS,
    STATE_LAYOUT_VERSION,
    Installment,
    Loan,
    Outflow,
    StateError,
    UserOverride,
    UserState,
    deserialize,
    record_fields,
    serialize,
)

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "state-layout-1.json"

LAYOUT_FIELDS: dict[int, dict[str, list[str]]] = {
    6: {
        "UserState": [
            "first_at", "last_at", "seen", "last_drawdown_at", "last_login_at", "score",
            "score_at", "scores", "devices", "card_binds", "outflows", "card_changes", "loans",
            "settled", "installments", "paid_installments", "credit", "last_cleared_at",
            "line", "cycle", "closed_at", "close_reasons", "cooling", "anchor",
            "awaiting_restore", "eligible_at", "episodes", "recent_flags", "next_deadline",
            "waiting", "timed", "quick_cycles", "early_settlements", "churn", "cash_outs",
            "milestones", "overrides", "overrides_changed_at",
        ],
        "Outflow": ["at", "amount", "card_id", "event_id"],
        "Loan": [
            "loan_id", "drawn_at", "amount", "term_months", "product", "event_id", "final_due",
        ],
        "Installment": [
            "loan_id", "number", "product", "due_day", "billed", "paid", "payments",
        ],
        "UserOverride": [
            "override_id", "kind", "rule", "actor", "reason", "note", "created_at", "ends_at",
            "ended",
        ],
    },
    5: {
        "UserState": [
            "first_at", "last_at", "line", "cycle", "closed_at", "close_reasons", "cooling",
            "anchor", "awaiting_restore", "eligible_at", "last_drawdown_at", "last_login_at",
            "score", "score_at", "scores", "seen", "devices", "card_binds", "outflows", "loans",
            "settled", "installments", "paid_installments", "credit", "quick_cycles",
            "early_settlements", "churn", "episodes", "recent_flags", "next_deadline",
            "last_cleared_at", "waiting", "timed", "card_changes", "overrides",
            "overrides_changed_at",
        ],
        "Outflow": ["at", "amount", "card_id", "event_id"],
        "Loan": [
            "loan_id", "drawn_at", "amount", "term_months", "product", "event_id", "final_due",
            "cash_out_flagged",
        ],
        "Installment": [
            "loan_id", "number", "product", "due_day", "billed", "paid", "milestones_done",
            "payments",
        ],
        "UserOverride": [
            "override_id", "kind", "rule", "actor", "reason", "note", "created_at", "ends_at",
            "ended",
        ],
    },
    4: {
        "UserState": [
            "first_at", "last_at", "line", "cycle", "closed_at", "close_reasons", "cooling",
            "anchor", "awaiting_restore", "eligible_at", "last_drawdown_at", "last_login_at",
            "score", "score_at", "scores", "seen", "devices", "card_binds", "outflows", "loans",
            "settled", "installments", "paid_installments", "credit", "quick_cycles",
            "early_settlements", "churn", "episodes", "recent_flags", "next_deadline",
            "last_cleared_at", "waiting", "timed", "card_changes",
        ],
        "Outflow": ["at", "amount", "card_id", "event_id"],
        "Loan": [
            "loan_id", "drawn_at", "amount", "term_months", "product", "event_id", "final_due",
            "cash_out_flagged",
        ],
        "Installment": [
            "loan_id", "number", "product", "due_day", "billed", "paid", "milestones_done",
            "payments",
        ],
    },
    3: {
        "UserState": [
            "first_at", "last_at", "line", "cycle", "closed_at", "close_reasons", "cooling",
            "anchor", "awaiting_restore", "eligible_at", "last_drawdown_at", "last_login_at",
            "score", "score_at", "scores", "seen", "devices", "card_binds", "outflows", "loans",
            "settled", "installments", "paid_installments", "credit", "quick_cycles",
            "early_settlements", "churn", "episodes", "recent_flags", "next_deadline",
            "last_cleared_at", "waiting", "timed",
        ],
        "Outflow": ["at", "amount", "card_id", "event_id"],
        "Loan": [
            "loan_id", "drawn_at", "amount", "term_months", "product", "event_id", "final_due",
            "cash_out_flagged",
        ],
        "Installment": [
            "loan_id", "number", "product", "due_day", "billed", "paid", "milestones_done",
            "payments",
        ],
    },
}  # fmt: skip
"""The fields of every record, in wire order, per layout version (from layout 3 on, the
layout is derived from them). A new field means a new version, a migration and an entry."""
CUT = at(60)
HISTORY = [
    login(at(0), "phone-1", eid="login-1"),
    login(at(0, 2), "phone-2", eid="login-2"),
    card(at(1), "card-A", eid="bank_card_change-3"),
    drawdown(at(2), "L1", term=3, eid="transaction-4"),
    bill(at(3), "L1", 1, date(2026, 3, 10), eid="repayment-5"),
    bill(at(3), "L1", 2, date(2026, 4, 10), eid="repayment-6"),
    pay(at(5), "L1", "100.00", installment=1, eid="repayment-7"),
    credit_score(at(6), 640, eid="profile_change-8"),
    profile(at(7), "phone", eid="profile_change-9"),
    drawdown(at(8), "L2", term=1, eid="transaction-10"),
    outflow(at(8, 1), "500.00", "card-A", eid="transaction-11"),
]
LATER = [
    login(at(70), "phone-1", eid="later-1"),
    pay(at(75), "L1", "100.00", installment=2, eid="later-2"),
    credit_score(at(80), 560, eid="later-3"),
    login(at(200), "phone-1", eid="later-4"),
]


def test_layout_1_reads_as_the_current_layout() -> None:
    blob = FIXTURE.read_bytes()
    assert blob.startswith(b"[1,")
    state = deserialize(blob)
    assert serialize(state).startswith(f"[{STATE_LAYOUT_VERSION},".encode())
    unpaid = state.installments["L1#2"]
    assert (unpaid.paid, state.milestones["L1#2"], unpaid.payments) == (0, 3, [])
    assert state.paid_installments["L1#1"][1] == -1  # its due day was not kept by layout 1
    assert state.scores == [[state.score_at, 640]]
    assert state.waiting == [] and state.timed == []
    assert deserialize(serialize(state)) == state


def test_a_restored_layout_1_state_goes_on_like_the_whole_history() -> None:
    whole = Timeline()
    whole.run(HISTORY, until=CUT)
    before = len(whole.outputs)
    whole.run(LATER, until=at(400))

    engine = Engine(whole.engine.policy)
    engine.restore("u1", FIXTURE.read_bytes())
    engine.advance(CUT, final=True)
    restored: list[str] = []
    for event in LATER:
        restored += [o.model_dump_json() for o in engine.apply(event).outputs]
    restored += [o.model_dump_json() for o in engine.advance(at(400), final=True)]

    expected = [o.model_dump_json() for o in whole.outputs[before:]]
    assert any('"LOW_CREDIT_SCORE"' in line for line in expected)  # the story goes somewhere
    assert restored == expected


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(StateError, match="layout version 99"):
        deserialize(b"[99]")
    with pytest.raises(StateError, match="layout 1"):
        deserialize(b"[1, 2, 3]")


def full_state() -> UserState:
    """A state with every field of every record away from its default."""
    return UserState(
        first_at=1_000,
        last_at=9_000,
        line="closed",
        cycle=2,
        closed_at=8_000,
        close_reasons=[{"code": "CASH_OUT", "at": 8_000}],
        cooling=3,
        anchor=7_500,
        awaiting_restore=True,
        eligible_at=20_000,
        last_drawdown_at=6_000,
        last_login_at=8_500,
        score=610,
        score_at=5_000,
        scores=[[4_000, 650], [5_000, 610]],
        seen={"e1": 1_000, "e2": 2_000},
        devices={"phone-1": [1_000, 1_500], "phone-2": [2_000]},
        card_binds={"card-A": [3_000]},
        outflows=[Outflow(6_100, 50_000, "card-A", "e6")],
        loans={"L2": Loan("L2", 6_000, 100_000, 3, "cash", "e5", 90_000)},
        settled={"L1": 5_500},
        installments={
            "L2#1": Installment("L2", 1, "cash", 20_300, 34_000, 1_000, [[7_000, 1_000]])
        },
        paid_installments={"L1#1": [5_400, 20_200]},
        credit={"cash": 100_000},
        quick_cycles=[(5_500, "L1")],
        early_settlements=[(5_500, "L1")],
        churn=[(6_000, "e5", "draw")],
        cash_outs=["e5"],
        milestones={"L2#1": 1},
        episodes={"QUICK_CYCLE": 1},
        recent_flags=[{"signal": "QUICK_CYCLE", "at": 5_500}],
        next_deadline=30_000,
        last_cleared_at=5_400,
        waiting=[(31_000, "e9", '{"event_id":"e9"}')],
        timed=[["flag", "QUICK_CYCLE", 5_500, "L1", "flag-1", 1]],
        card_changes=[(2_000, "card-B", "bind"), (2_500, "card-B", "unbind")],
        overrides=[
            UserOverride("ov-1", "suppress", "DEVICE_SWITCHING", "alice", "travel", "n", 1, 9, True)
        ],
        overrides_changed_at=8_800,
    )


def _unset_fields(record: Any, path: str) -> list[str]:
    unset: list[str] = []
    for item in fields(record):
        value = getattr(record, item.name)
        default = item.default_factory() if item.default_factory is not MISSING else item.default
        if value == default or value in ([], {}, None):
            unset.append(f"{path}.{item.name}")
        nested = list(value.values()) if isinstance(value, dict) else value
        if isinstance(nested, list):
            for element in nested:
                if is_dataclass(element):
                    unset += _unset_fields(element, f"{path}.{item.name}[]")
    return unset


def test_the_layout_is_what_its_version_says() -> None:
    assert record_fields() == LAYOUT_FIELDS[STATE_LAYOUT_VERSION], (
        "a record's fields changed: bump STATE_LAYOUT_VERSION, add a migration from the "
        "previous layout to MIGRATIONS and the new field lists to LAYOUT_FIELDS"
    )
    assert sorted(MIGRATIONS) == list(range(1, STATE_LAYOUT_VERSION))


def test_the_full_state_sets_every_field() -> None:
    assert _unset_fields(full_state(), "state") == []


@pytest.mark.parametrize("state", [UserState(), full_state()], ids=["empty", "full"])
def test_a_state_reads_back_as_written(state: UserState) -> None:
    blob = serialize(state)
    assert blob.startswith(f"[{STATE_LAYOUT_VERSION},".encode())
    assert deserialize(blob) == state
    assert serialize(deserialize(blob)) == blob


def test_layout_2_reads_as_it_was_written() -> None:
    blob = (FIXTURES / "state-layout-2.json").read_bytes()
    assert blob.startswith(b"[2,")
    assert deserialize(blob) == replace(full_state(), card_changes=[], **NO_OVERRIDES)


NO_OVERRIDES: dict[str, Any] = {"overrides": [], "overrides_changed_at": None}
"""Layout 5's fields as a state of an older layout reads: no overrides yet."""


def test_layout_3_reads_as_it_was_written() -> None:
    """Written by layout 3 for ``full_state()``; layout 4's card changes start empty."""
    blob = (FIXTURES / "state-layout-3.json").read_bytes()
    assert blob.startswith(b"[3,")
    assert deserialize(blob) == replace(full_state(), card_changes=[], **NO_OVERRIDES)


def test_layout_4_reads_as_it_was_written() -> None:
    """Written by layout 4 for ``full_state()``; layout 5's overrides start empty."""
    blob = (FIXTURES / "state-layout-4.json").read_bytes()
    assert blob.startswith(b"[4,")
    assert deserialize(blob) == replace(full_state(), **NO_OVERRIDES)


def test_layout_5_reads_as_it_was_written() -> None:
    """Written by layout 5 for ``full_state()``: the loan's cash-out flag and the
    installment's milestones were kept inside their records."""
    blob = (FIXTURES / "state-layout-5.json").read_bytes()
    assert blob.startswith(b"[5,")
    assert deserialize(blob) == full_state()


def test_the_facts_come_first_and_hold_no_verdict() -> None:
    assert tuple(LAYOUT_FIELDS[6]["UserState"][: len(FACT_FIELDS)]) == FACT_FIELDS
    assert set(FACT_FIELDS).isdisjoint(DECISION_FIELDS)
    assert (*FACT_FIELDS, *DECISION_FIELDS) == tuple(record_fields()["UserState"])
    assert {"line", "episodes", "cash_outs", "milestones", "next_deadline"} <= set(DECISION_FIELDS)


def test_layout_1_reads_as_layout_2_read_it() -> None:
    as_2 = (FIXTURES / "state-layout-1-read-by-2.json").read_bytes()
    assert as_2.startswith(b"[2,")
    assert deserialize(FIXTURE.read_bytes()) == deserialize(as_2)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"[2, 1, 2]", "layout 2: 3 fields"),
        (b"[3, 1, 2]", "layout 3: 2 fields"),
        (b'["3"]', "layout version '3'"),
        (b"{}", "layout version None"),
        (b"[3" + b", null" * 33 + b"]", "layout 5"),
        (b"[4, 1, 2]", "layout 4: 2 fields"),
        (b"[4" + b", null" * 34 + b"]", "layout 5"),
        (b"[4" + b", null" * 33 + b"]", "layout 4: 33 fields"),
        (b"[5, 1, 2]", "layout 5: 2 fields"),
        (b"[5" + b", null" * 36 + b"]", "layout 5"),
        (b"[5" + b", null" * 35 + b"]", "layout 5: 35 fields"),
        (b"[6, 1, 2]", "layout 6: 2 fields"),
        (b"[6" + b", null" * 38 + b"]", "layout 6"),
    ],
)
def test_a_row_that_does_not_fit_its_layout_is_refused(blob: bytes, message: str) -> None:
    with pytest.raises(StateError, match=message):
        deserialize(blob)
