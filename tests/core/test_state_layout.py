"""A state written by the previous layout restores, and the user's story goes on as if the
whole history had run on this release.

``fixtures/state-layout-1.json`` was written by layout 1 for the history in ``HISTORY``
after ``replay --until CUT``: an open line, a paid and an unpaid installment past three
overdue milestones, devices, a card, a credit score and a phone change.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.core.scenario import Timeline, at, bill, card, drawdown, login, outflow, pay, profile
from tests.core.scenario import score as credit_score
from workers.core.engine import Engine
from workers.core.state import STATE_LAYOUT_VERSION, StateError, deserialize, serialize

FIXTURE = Path(__file__).parent / "fixtures" / "state-layout-1.json"
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
    assert (unpaid.paid, unpaid.milestones_done, unpaid.payments) == (0, 3, [])
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
