"""Two policies folded over one user's facts (``decide_shared``): the facts are recorded
once, kept for the longer windows of the two (``retention``), and each policy judges over
them exactly as it would alone."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from schemas.events import Event
from schemas.outputs import Flag, Output
from tests.core.scenario import POLICY, at, card, drawdown, login, outflow, score
from tests.core.test_policy_versions import variant
from tests.properties.test_lifecycle_properties import START, histories
from workers.core.compiled import Compiled, compile_policy
from workers.core.decide import decide, decide_shared
from workers.core.lifecycle import fire_deadline
from workers.core.policy import parse_policy
from workers.core.retention import retention
from workers.core.rules import RULES
from workers.core.rules import cash_out as cash_out_rule
from workers.core.state import DECISION_FIELDS, FACT_FIELDS, UserState, serialize, share_facts
from workers.core.timeutil import to_us

# Other thresholds and actions, and other windows (some longer, some shorter) than live's.
OTHER = parse_policy(
    variant(
        "other-windows",
        **{
            "window_hours = 24": "window_hours = 48",
            "card_bound_within_days = 7": "card_bound_within_days = 3",
            "{ hours = 24, min_distinct_devices = 4 }": "{ hours = 6, min_distinct_devices = 3 }",
            "hours = 168, min_distinct_devices = 6": "hours = 240, min_distinct_devices = 7",
            'action = "flag"                 # shadow': 'action = "close_line"  # shadow',
            "unbound_within_hours = 1": "unbound_within_hours = 3",
            "min_quick_unbinds = 2": "min_quick_unbinds = 1",
            "min_score = 600": "min_score = 650",
            "min_changes = 4": "min_changes = 2",
            "dedupe_days = 30": "dedupe_days = 45",
        },
    )
)
LIVE, CHALLENGER = compile_policy(POLICY), compile_policy(OTHER, "challenger")
END = START + timedelta(days=800)


def fold(
    events: list[Event], policies: list[Compiled], *, shared: bool
) -> tuple[list[list[Output]], dict[str, list[UserState]]]:
    """Each user's events in input order under every policy: alone (one state each), or
    over one user's shared facts; a user's deadlines due by an event fire before it."""
    keep = retention(policies)
    outputs: list[list[Output]] = [[] for _ in policies]
    users: dict[str, list[UserState]] = {}

    def fire(user: str, states: list[UserState], until: int) -> None:
        for index, (state, rules) in enumerate(zip(states, policies, strict=True)):
            while state.next_deadline is not None and state.next_deadline <= until:
                outputs[index] += fire_deadline(state, rules, user)

    for event in events:
        moment = to_us(event.occurred_at)
        states = users.setdefault(event.user_id, [UserState() for _ in policies])
        fire(event.user_id, states, moment)
        if shared:
            produced, _ = decide_shared(states, event, policies, keep, moment)
        else:
            produced = [
                decide(state, event, rules, moment)[1]
                for state, rules in zip(states, policies, strict=True)
            ]
        for index, items in enumerate(produced):
            outputs[index] += items
    for user, states in users.items():
        fire(user, states, to_us(END))
    return outputs, users


def bodies(outputs: list[Output]) -> list[str]:
    return [output.model_dump_json() for output in outputs]


RISKY = [
    login(at(0), "phone-1", eid="e1"),
    card(at(0, 1), "card-A", eid="e2"),
    card(at(0, 2), "card-A", "unbind", eid="e3"),
    login(at(0, 3), "phone-2", eid="e4"),
    login(at(0, 4), "phone-3", eid="e5"),
    card(at(1), "card-B", eid="e6"),
    drawdown(at(1, 1), "L1", "1000.00", eid="e7"),
    outflow(at(1, 30), "900.00", "card-B", eid="e8"),
    score(at(2), 620, eid="e9"),
    login(at(120), "phone-1", eid="e10"),
]


SPREAD_DEVICES = [login(at(day * 1.4), f"phone-{day}", eid=f"d{day}") for day in range(8)]
"""Eight devices over ten days: the challenger's 240-hour window needs the facts kept longer
than live's 168 hours would keep them."""


@pytest.mark.parametrize("events", [RISKY, SPREAD_DEVICES], ids=["risky", "spread-devices"])
def test_each_policy_over_the_shared_facts_decides_as_it_would_alone(events: list[Event]) -> None:
    alone, _ = fold(events, [LIVE, CHALLENGER], shared=False)
    together, _ = fold(events, [LIVE, CHALLENGER], shared=True)
    assert bodies(together[0]) == bodies(alone[0])
    assert bodies(together[1]) == bodies(alone[1])
    assert any('"DEVICE_SWITCHING"' in body for body in bodies(together[1]))


def test_two_policies_over_one_users_facts_decide_as_each_alone() -> None:
    alone, _ = fold(RISKY, [LIVE, CHALLENGER], shared=False)
    together, users = fold(RISKY, [LIVE, CHALLENGER], shared=True)
    assert bodies(together[0]) == bodies(alone[0])
    assert bodies(together[1]) == bodies(alone[1])
    # The two disagree here (the challenger's 48 h cash-out window, its score floor of 650
    # and its closing bind-unbind), so the comparison says something.
    assert bodies(together[0]) != [b.replace("challenger", "live") for b in bodies(together[1])]
    live_state, challenger_state = users["u1"]
    for name in FACT_FIELDS:
        assert getattr(challenger_state, name) is getattr(live_state, name), name
    assert live_state.cycle == 1 and challenger_state.cycle == 1
    assert live_state.close_reasons != challenger_state.close_reasons


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=100))
def test_any_history_decides_over_shared_facts_as_each_policy_alone(events: list[Event]) -> None:
    """Histories of two users with bursts, silences, events two hours late and
    redeliveries: each policy's outputs over the shared facts are its outputs alone."""
    alone, _ = fold(events, [LIVE, CHALLENGER], shared=False)
    together, _ = fold(events, [LIVE, CHALLENGER], shared=True)
    assert bodies(together[0]) == bodies(alone[0])
    assert bodies(together[1]) == bodies(alone[1])


def test_the_facts_are_kept_for_the_longest_window_of_the_policies() -> None:
    keep = retention([LIVE, CHALLENGER])
    cash_out = keep.params["CASH_OUT"]
    assert (cash_out.window, cash_out.card_window) == (
        CHALLENGER.params["CASH_OUT"].window,
        LIVE.params["CASH_OUT"].card_window,
    )
    devices = keep.params["DEVICE_SWITCHING"]
    assert devices.keep == CHALLENGER.params["DEVICE_SWITCHING"].keep
    assert devices.min_window == CHALLENGER.params["DEVICE_SWITCHING"].min_window
    assert keep.dedupe_window == CHALLENGER.dedupe_window
    assert retention([LIVE]) is LIVE


def test_a_rule_keeps_facts_only_in_facts_and_judges_only_in_its_policys_state() -> None:
    for rule in RULES:
        assert set(rule.facts) <= set(FACT_FIELDS), rule.code
        assert set(rule.state_fields) | set(rule.also_writes) <= set(DECISION_FIELDS), rule.code


def test_a_failing_policy_leaves_every_state_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    states = [UserState(), UserState()]
    keep = retention([LIVE, CHALLENGER])
    for event in RISKY[:7]:
        decide_shared(states, event, [LIVE, CHALLENGER], keep)
    before = [serialize(state) for state in states]

    calls: Counter[str] = Counter()
    original = cash_out_rule.RULE.on_event

    def second_policy_fails(step, event):  # type: ignore[no-untyped-def]
        calls[step.rules.role] += 1
        if step.rules.role == "challenger":
            raise RuntimeError("defect")
        original(step, event)

    monkeypatch.setattr(cash_out_rule.RULE, "on_event", second_policy_fails)
    with pytest.raises(RuntimeError, match="defect"):
        decide_shared(states, RISKY[7], [LIVE, CHALLENGER], keep)
    assert calls == Counter({"live": 1, "challenger": 1})  # the first had judged already
    assert [serialize(state) for state in states] == before
    for name in FACT_FIELDS:
        assert getattr(states[1], name) is getattr(states[0], name), name
    monkeypatch.undo()
    produced, duplicate = decide_shared(states, RISKY[7], [LIVE, CHALLENGER], keep)
    assert not duplicate
    # The outflow came 29 hours after the drawdown: inside the challenger's window only.
    assert [o.signal for o in produced[1] if isinstance(o, Flag)] == ["CASH_OUT"]
    assert not any(isinstance(o, Flag) and o.signal == "CASH_OUT" for o in produced[0])


def test_sharing_points_the_other_state_at_the_owners_facts() -> None:
    owner, other = UserState(), UserState()
    for event in RISKY[:4]:
        decide(owner, event, LIVE)
    share_facts(owner, other)
    assert other.devices is owner.devices and other.seen is owner.seen
    assert other.line == "open" and other.episodes == {}
