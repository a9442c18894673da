"""A challenger engine forked from the live one: it starts from the live engine's present,
goes its own way under its own policy, never changes the live engine, and the closures
where the two disagree are counted once each, by kind and reason."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from schemas.events import Event
from schemas.outputs import Decision, Output
from tests.core.scenario import DAY, HOUR, POLICY, at, card, closes, flags, login, score
from tests.core.test_engine_loader import DictStore
from tests.core.test_engine_memory import END, HISTORY
from tests.core.test_policy_versions import variant
from workers.core.challenger import CHALLENGER_ONLY, LIVE_ONLY, disagreements
from workers.core.engine import Engine
from workers.core.policy import parse_policy

STRICT = parse_policy(variant("strict-score", **{"min_score = 600": "min_score = 700"}))
MINUTE = timedelta(minutes=1)
FORK_AT = len(HISTORY) // 3


def _run(engine: Engine, start: int) -> list[Output]:
    outputs = [o for item in HISTORY[start:] for o in engine.apply(item).outputs]
    return outputs + engine.advance(END, final=True)


def _bodies(outputs: list[Output]) -> list[str]:
    """Outputs without the role that made them."""
    return [o.model_copy(update={"policy_role": "live"}).model_dump_json() for o in outputs]


def _forked(loader: bool) -> tuple[Engine, Engine]:
    """A live engine part way through the history and a challenger forked from it, with the
    store-backed variant reading saved states through a snapshot of the store."""
    if not loader:
        live = Engine(POLICY, live_users=3)
        for item in HISTORY[:FORK_AT]:
            live.apply(item)
        return live, live.fork(STRICT)
    store = DictStore()
    live = store.open(live_users=3)
    for item in HISTORY[:FORK_AT]:
        live.apply(item)
    store.save(live)
    snapshot = dict(store.states)
    return live, live.fork(STRICT, loader=snapshot.get)


@pytest.mark.parametrize("loader", [False, True], ids=["in-memory", "store-snapshot"])
def test_the_fork_never_changes_the_live_engine(loader: bool) -> None:
    reference = Engine(POLICY)
    for item in HISTORY[:FORK_AT]:
        reference.apply(item)
    expected = _run(reference, FORK_AT)
    live, challenger = _forked(loader)
    live_outputs, challenger_outputs = [], []
    for item in HISTORY[FORK_AT:]:  # interleaved, as the worker runs them
        live_outputs.extend(live.apply(item).outputs)
        challenger_outputs.extend(challenger.apply(item).outputs)
    live_outputs.extend(live.advance(END, final=True))
    challenger_outputs.extend(challenger.advance(END, final=True))
    assert _bodies(live_outputs) == _bodies(expected)
    assert {o.policy_role for o in live_outputs} == {"live"}
    assert {o.policy_role for o in challenger_outputs} == {"challenger"}
    # the strict challenger flags more low scores than live
    low = [
        sum(f.signal == "LOW_CREDIT_SCORE" for f in flags(outputs))
        for outputs in (live_outputs, challenger_outputs)
    ]
    assert low[1] > low[0]


def test_a_fork_under_the_same_policy_decides_exactly_as_the_live_engine() -> None:
    live = Engine(POLICY, live_users=2)
    for item in HISTORY[:FORK_AT]:
        live.apply(item)
    twin = live.fork(POLICY)
    assert _bodies(_run(twin, FORK_AT)) == _bodies(_run(live, FORK_AT))


def test_a_forked_engine_keeps_the_clock_deadlines_and_cycles() -> None:
    live = Engine(POLICY)
    for item in HISTORY[:FORK_AT]:
        live.apply(item)
    challenger = live.fork(STRICT)
    assert challenger.clock == live.clock
    assert challenger.deadline_count == live.deadline_count
    assert challenger.role == "challenger" and live.role == "live"
    users = sorted({item.user_id for item in HISTORY[:FORK_AT]})
    assert [challenger.closed_cycles(u) for u in users] == [live.closed_cycles(u) for u in users]
    assert any(live.closed_cycles(u) for u in users)
    assert challenger.closed_cycles("nobody") == 0
    challenger.discard_dirty()
    assert challenger.take_dirty() == {}


def _offline(live: list[Output], challenger: list[Output]) -> Counter[tuple[str, str]]:
    """The disagreements of two complete runs: each closure the other run never made."""
    counts: Counter[tuple[str, str]] = Counter()
    for kind, own, other in ((CHALLENGER_ONLY, challenger, live), (LIVE_ONLY, live, challenger)):
        others = {d.decision_id for d in closes(other)}
        for closure in closes(own):
            if closure.decision_id not in others:
                counts.update((kind, reason.code) for reason in closure.reasons)
    return counts


# A challenger that closes on one quick card bind-unbind (live only flags two) and tolerates
# scores down to 500 (live closes below 600).
CHALLENGER_TEXT = variant(
    "challenger-1",
    **{
        'action = "flag"                 # shadow': 'action = "close_line"  # shadow',
        "min_quick_unbinds = 2": "min_quick_unbinds = 1",
        "min_score = 600": "min_score = 500",
    },
)
CHALLENGER = parse_policy(CHALLENGER_TEXT)


def population(users: int = 30) -> list[Event]:
    """Users who each do one of: a quick card bind-unbind (the challenger closes), a score
    of 540 (live closes), a score of 450 (both close), nothing risky; in time order."""
    events: list[Event] = []
    for number in range(users):
        user, start = f"p{number}", at(hours=number)
        events.append(login(start, user=user))
        kind = number % 4
        if kind == 0:
            events += [card(start + HOUR, f"{user}-c", user=user)]
            events += [card(start + 90 * MINUTE, f"{user}-c", "unbind", user=user)]
        elif kind in (1, 2):
            events.append(score(start + 2 * HOUR, 540 if kind == 1 else 450, user=user))
        events.append(login(start + DAY, user=user))
    return sorted(events, key=lambda item: item.occurred_at)


POPULATION = population()


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_disagreements_counted_step_by_step_match_the_complete_runs(step: int) -> None:
    """Counted after each event or each batch, the disagreements equal those found by
    comparing the two complete runs (each policy's extra closures are never made by the
    other here), and both kinds are counted by reason."""
    live = Engine(POLICY)
    challenger = live.fork(CHALLENGER)
    counted: Counter[tuple[str, str]] = Counter()
    all_live: list[Output] = []
    all_challenger: list[Output] = []
    for start in range(0, len(POPULATION), step):
        live_outputs: list[Output] = []
        challenger_outputs: list[Output] = []
        for item in POPULATION[start : start + step]:
            live_outputs.extend(live.apply(item).outputs)
            challenger_outputs.extend(challenger.apply(item).outputs)
        counted += disagreements(live, challenger, live_outputs, challenger_outputs)
        all_live += live_outputs
        all_challenger += challenger_outputs
    assert counted == Counter(
        {(CHALLENGER_ONLY, "CARD_BIND_UNBIND"): 8, (LIVE_ONLY, "LOW_CREDIT_SCORE"): 8}
    )
    assert counted == _offline(all_live, all_challenger)
    assert len(closes(all_live)) == len(closes(all_challenger)) == 15  # 8 + 7 both close


def test_a_disagreement_is_counted_when_it_appears_and_not_again() -> None:
    """Live closes for inactivity at day 90, a challenger with a 120-day deadline at day 120:
    at day 100 that is a closure live makes and the challenger does not (counted once); at
    day 130 the challenger makes the same closure (the same cycle, the same id), counted
    neither as a disagreement nor taken back."""
    slow = parse_policy(variant("slow-inactivity", **{"days = 90 ": "days = 120 "}))
    live = Engine(POLICY)
    challenger = live.fork(slow)
    counts = disagreements(
        live, challenger, live.apply(login(at(0))).outputs, challenger.apply(login(at(0))).outputs
    )
    assert counts == Counter()
    for day in (100, 130):
        counts += disagreements(
            live, challenger, live.advance(at(day)), challenger.advance(at(day))
        )
    assert counts == Counter({(LIVE_ONLY, "INACTIVITY"): 1})
    assert live.closed_cycles("u1") == challenger.closed_cycles("u1") == 1


def test_only_closures_are_compared() -> None:
    live = Engine(POLICY)
    challenger = live.fork(POLICY)
    outputs = live.apply(login(at(0))).outputs
    assert not any(isinstance(o, Decision) for o in outputs)
    assert disagreements(live, challenger, outputs, []) == Counter()
