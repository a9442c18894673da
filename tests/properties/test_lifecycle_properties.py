"""Invariants of the credit-line lifecycle over random histories (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import EVENT_ADAPTER, Event
from schemas.outputs import Decision, Flag
from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.core.state import serialize

POLICY = load_policy()
START = datetime(2026, 1, 1, tzinfo=UTC)
USERS = ["alice", "bob"]


def _payload(kind: str, draw: Any, user: str, loan: str) -> dict[str, Any]:
    if kind == "login":
        return {
            "type": "login",
            "device_id": f"d{draw(st.integers(0, 7))}",
            "success": draw(st.booleans()),
        }
    if kind == "device_change":
        return {"type": "device_change", "device_id": f"d{draw(st.integers(0, 7))}"}
    if kind == "bank_card_change":
        return {
            "type": "bank_card_change",
            "action": draw(st.sampled_from(["bind", "unbind"])),
            "card_id": f"c{draw(st.integers(0, 3))}",
        }
    if kind == "score":
        return {
            "type": "profile_change",
            "field": "credit_score",
            "credit_score": draw(st.integers(520, 720)),
        }
    if kind == "phone":
        return {"type": "profile_change", "field": draw(st.sampled_from(["phone", "address"]))}
    if kind == "drawdown":
        return {
            "type": "transaction",
            "kind": "loan_drawdown",
            "loan_id": loan,
            "amount": str(draw(st.integers(100, 5000))),
            "term_months": draw(st.integers(1, 12)),
        }
    if kind == "outflow":
        return {
            "type": "transaction",
            "kind": draw(st.sampled_from(["transfer_out", "withdrawal"])),
            "amount": str(draw(st.integers(50, 5000))),
            "card_id": f"c{draw(st.integers(0, 3))}",
        }
    if kind == "bill":
        return {
            "type": "repayment",
            "kind": "installment_due",
            "loan_id": loan,
            "product": "jiebei",
            "installment": draw(st.integers(1, 3)),
            "amount": "100",
            "due_date": (START + timedelta(days=draw(st.integers(0, 400)))).date().isoformat(),
        }
    return {
        "type": "repayment",
        "kind": "repayment",
        "loan_id": loan,
        "product": "jiebei",
        "amount": str(draw(st.integers(50, 400))),
        "settles_loan": draw(st.booleans()),
    }


KINDS = [
    "login",
    "device_change",
    "bank_card_change",
    "score",
    "phone",
    "drawdown",
    "outflow",
    "bill",
    "pay",
]


LONG_GAPS = (0, 60, 3600, 6 * 3600, 86400, 10 * 86400, 40 * 86400)
"""Seconds between events: mostly forward in time, sometimes a burst, sometimes a silence."""


@st.composite
def histories(draw: Any, max_events: int = 120, gaps: tuple[int, ...] = LONG_GAPS) -> list[Event]:
    count = draw(st.integers(1, max_events))
    moment = START
    events: list[Event] = []
    for index in range(count):
        # Mostly forward in time, sometimes a burst, sometimes a long silence, sometimes late.
        gap = draw(st.sampled_from(gaps))
        moment += timedelta(seconds=gap)
        late = draw(st.sampled_from([0, 0, 0, 0, 7200]))
        user = draw(st.sampled_from(USERS))
        loan = f"L{draw(st.integers(0, 4))}"
        body = _payload(draw(st.sampled_from(KINDS)), draw, user, loan)
        body.update(
            event_id=f"e{index}",
            user_id=user,
            occurred_at=(moment - timedelta(seconds=late)).isoformat(),
        )
        events.append(EVENT_ADAPTER.validate_python(body))
        if draw(st.integers(0, 9)) == 0:
            events.append(events[draw(st.integers(0, len(events) - 1))])  # a redelivery
    return events


def run(events: list[Event], until_days: int = 800) -> list[Flag | Decision]:
    engine = Engine(POLICY)
    outputs: list[Flag | Decision] = []
    for event in events:
        outputs.extend(engine.apply(event).outputs)
    outputs.extend(engine.advance(START + timedelta(days=until_days), final=True))
    return outputs


RELAXED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RELAXED
@given(histories())
def test_closes_and_restores_alternate_per_user(events: list[Event]) -> None:
    """Never two closes without an eligibility between, never eligibility for an open line."""
    state = {user: "open" for user in USERS}
    for output in run(events):
        if not isinstance(output, Decision):
            continue
        if output.decision == "close_line":
            assert state[output.user_id] != "closed", "second close while closed"
            state[output.user_id] = "closed"
        else:
            assert state[output.user_id] == "closed", "eligibility for a line that was not closed"
            state[output.user_id] = "restore_eligible"
        assert output.line_state == state[output.user_id]


@RELAXED
@given(histories())
def test_replay_is_deterministic_and_redeliveries_change_nothing(events: list[Event]) -> None:
    once = [o.model_dump_json() for o in run(events)]
    assert once == [o.model_dump_json() for o in run(events)]
    doubled = [copy for event in events for copy in (event, event)]
    assert once == [o.model_dump_json() for o in run(doubled)]


@RELAXED
@given(histories(), st.integers(0, 200))
def test_restoring_state_from_its_serialised_form_changes_nothing(
    events: list[Event], cut: int
) -> None:
    """What the worker does after a restart: reload every user's state, carry on."""
    cut = min(cut, len(events))
    straight = [o.model_dump_json() for o in run(events)]
    first = Engine(POLICY)
    outputs = [o for event in events[:cut] for o in first.apply(event).outputs]
    second = Engine(POLICY)
    for user_id, blob in first.take_dirty().items():
        second.restore(user_id, blob)
    if first.clock is not None:
        second.advance(first.clock)
    for event in events[cut:]:
        outputs.extend(second.apply(event).outputs)
    outputs.extend(second.advance(START + timedelta(days=800), final=True))
    assert [o.model_dump_json() for o in outputs] == straight
    for engine in (first, second):
        users = [engine.state_of(user) for user in USERS]
        scanned = sum(1 for s in users if s is not None and s.next_deadline is not None)
        assert engine.deadline_count == scanned


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=1500))
def test_state_stays_bounded_under_long_histories(events: list[Event]) -> None:
    engine = Engine(POLICY)
    for event in events:
        engine.apply(event)
    for user in USERS:
        state = engine.state_of(user)
        if state is not None:
            assert len(serialize(state)) < 64_000
            assert len(state.seen) <= POLICY.memory.dedupe_max_ids
            assert all(len(uses) <= 32 for uses in state.devices.values())


@RELAXED
@given(histories(), st.integers(1, 40))
def test_a_live_set_of_one_user_changes_nothing(events: list[Event], batch: int) -> None:
    """Every other user serialised and rehydrated at each turn: outputs, changelog records
    and the deadline count stay those of an engine that keeps every user live."""
    small, unbounded = Engine(POLICY, live_users=1), Engine(POLICY)
    for index, event in enumerate(events):
        step, expected = small.apply(event), unbounded.apply(event)
        assert [o.model_dump_json() for o in step.outputs] == [
            o.model_dump_json() for o in expected.outputs
        ]
        assert small.live_user_count == 1
        assert small.deadline_count == unbounded.deadline_count
        if index % batch == 0:
            assert small.take_dirty() == unbounded.take_dirty()
    end = START + timedelta(days=800)
    assert [o.model_dump_json() for o in small.advance(end)] == [
        o.model_dump_json() for o in unbounded.advance(end)
    ]
    assert small.take_dirty() == unbounded.take_dirty()
    statuses = [small.status(user) for user in USERS]
    assert statuses == [unbounded.status(user) for user in USERS]
    pending = sum(1 for s in statuses if s is not None and s["next_deadline_at"] is not None)
    assert small.deadline_count == pending
