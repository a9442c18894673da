"""An engine that keeps only a few users live (the rest serialised) behaves exactly like one
that keeps every user live: same outputs in the same order, same changelog bytes, same
deadlines, same status; and what it holds stays within its bound."""

from __future__ import annotations

import gc
import itertools
import random
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from schemas.events import Event
from schemas.outputs import Output
from tests.core.scenario import (
    DAY,
    HOUR,
    POLICY,
    SECOND,
    T0,
    bill,
    card,
    decisions,
    device_change,
    drawdown,
    flags,
    login,
    midnight,
    outflow,
    pay,
    profile,
    score,
)
from workers.core.engine import Engine
from workers.core.state import StateError, UserState, serialize
from workers.core.users import Users

MICROSECOND = timedelta(microseconds=1)


def _user_events(rng: random.Random, user: str, days: int) -> Iterator[Event]:
    """One user's mixed history: logins, loans with bills paid on time, late or never,
    score drops, device bursts, cash-out, profile churn and long silences."""
    moment = T0 + rng.randrange(86_400) * SECOND
    end = T0 + days * DAY
    loans = itertools.count(1)
    while moment < end:
        roll = rng.random()
        if roll < 0.35:
            yield login(moment, f"{user}-d{rng.randrange(2)}", user=user)
        elif roll < 0.55:
            loan = f"{user}-L{next(loans)}"
            yield drawdown(moment, loan, amount=f"{rng.randrange(5, 50) * 100}.00", user=user)
            due = (moment + rng.randrange(15, 40) * DAY).date()
            yield bill(moment + 2 * DAY, loan, 1, due, user=user)
            paid_late = rng.choice([-1, -1, -1, 3, 12, 45, None])
            if paid_late is not None:
                yield pay(midnight(due) + paid_late * DAY + 10 * HOUR, loan, user=user)
        elif roll < 0.65:
            yield score(moment, rng.choice([540, 650, 700, 720, 760]), user=user)
        elif roll < 0.72:
            for burst in range(5):
                yield device_change(moment + burst * HOUR, f"{user}-x{burst}", user=user)
        elif roll < 0.77:
            loan = f"{user}-C{next(loans)}"
            yield card(moment, f"{user}-card", user=user)
            yield drawdown(moment + HOUR, loan, amount="2000.00", user=user)
            yield outflow(moment + 3 * HOUR, "1900.00", f"{user}-card", user=user)
        elif roll < 0.82:
            yield profile(moment, rng.choice(["phone", "identity", "address"]), user=user)
        elif roll < 0.86:
            moment += rng.randrange(95, 200) * DAY  # a long silence: inactivity, cooling ends
        gap = rng.choice([HOUR, 6 * HOUR, DAY, 3 * DAY, 9 * DAY, 20 * DAY])
        moment += gap


def mixed_history(users: int = 12, days: int = 300, seed: int = 5) -> list[Event]:
    """Several users' histories interleaved in arrival order, with late events and
    redeliveries, as the worker would see them."""
    rng = random.Random(seed)
    arrivals: list[tuple[datetime, int, Event]] = []
    serial = itertools.count()
    for number in range(users):
        for item in _user_events(rng, f"u{number}", days):
            delay = 2 * HOUR if rng.random() < 0.05 else timedelta(0)
            arrivals.append((item.occurred_at + delay, next(serial), item))
            if rng.random() < 0.03:
                arrivals.append((item.occurred_at + delay + HOUR, next(serial), item))
    arrivals.sort(key=lambda arrival: (arrival[0], arrival[1]))
    return [item for _, _, item in arrivals]


HISTORY = mixed_history()
USERS = sorted({item.user_id for item in HISTORY})
END = max(item.occurred_at for item in HISTORY) + 400 * DAY


def _dumped(outputs: list[Output]) -> list[str]:
    return [o.model_dump_json() for o in outputs]


def _serialised(engine: Engine, user_id: str) -> bytes:
    state = engine.state_of(user_id)
    assert state is not None
    return serialize(state)


def _scanned_deadlines(engine: Engine) -> int:
    """Users with a pending deadline, by looking at each (``status`` moves nobody live)."""
    statuses = [engine.status(user) for user in USERS]
    return sum(1 for s in statuses if s is not None and s["next_deadline_at"] is not None)


def test_the_history_exercises_closures_restores_and_deadlines() -> None:
    """The comparisons below mean something only if the history reaches these paths."""
    engine = Engine(POLICY)
    outputs = [o for item in HISTORY for o in engine.apply(item).outputs]
    outputs.extend(engine.advance(END, final=True))
    assert {d.decision for d in decisions(outputs)} == {"close_line", "restore_eligibility"}
    signals = {f.signal for f in flags(outputs)}
    assert {"OVERDUE", "SERIOUS_OVERDUE", "INACTIVITY", "LOW_CREDIT_SCORE"} <= signals
    assert {"DEVICE_SWITCHING", "CASH_OUT"} <= signals
    assert len(HISTORY) > 500
    assert len(USERS) == 12


@pytest.mark.parametrize("live_users", [1, 2, 5])
def test_a_tiny_live_set_changes_nothing_observable(live_users: int) -> None:
    small, unbounded = Engine(POLICY, live_users=live_users), Engine(POLICY)
    for index, item in enumerate(HISTORY):
        step, expected = small.apply(item), unbounded.apply(item)
        assert step.duplicate == expected.duplicate
        assert _dumped(step.outputs) == _dumped(expected.outputs)
        assert small.live_user_count <= live_users
        assert small.user_count == unbounded.user_count
        assert small.deadline_count == unbounded.deadline_count
        if index % 37 == 0:  # a batch boundary in the worker: changelog records go out
            assert small.take_dirty() == unbounded.take_dirty()
            assert small.deadline_count == _scanned_deadlines(small)
            for user in USERS:
                assert small.status(user) == unbounded.status(user)
            assert small.live_user_count <= live_users
    assert _dumped(small.advance(END, final=True)) == _dumped(unbounded.advance(END, final=True))
    assert small.take_dirty() == unbounded.take_dirty()
    assert small.deadline_count == unbounded.deadline_count == _scanned_deadlines(small)
    for user in USERS:
        assert _serialised(small, user) == _serialised(unbounded, user)
        assert small.live_user_count <= live_users
    assert small.state_of("nobody") is None
    assert small.status("nobody") is None
    assert small.user_count == len(USERS)


def test_a_cold_users_deadline_fires_at_its_milestone() -> None:
    engine = Engine(POLICY, live_users=1)
    due = date(2026, 4, 1)
    engine.apply(drawdown(T0, "L1", user="late"))
    engine.apply(bill(T0 + DAY, "L1", 1, due, user="late"))
    engine.apply(login(T0 + 2 * DAY, user="other"))  # the only live user now: "late" is cold
    assert engine.live_user_count == 1
    assert engine.deadline_count == 2  # late's overdue milestone, other's inactivity
    assert engine.take_dirty().keys() == {"late", "other"}

    first = midnight(due) + DAY  # overdue day 1
    assert engine.advance(first - MICROSECOND, final=True) == []
    assert engine.take_dirty() == {}
    fired = engine.advance(first, final=True)
    assert len(fired) == 1
    assert [(f.user_id, f.signal, f.raised_at, f.overdue_days) for f in flags(fired)] == [
        ("late", "OVERDUE", first, 1)
    ]
    assert engine.live_user_count == 1
    assert engine.deadline_count == 2
    status = engine.status("late")
    assert status is not None
    assert status["next_deadline_at"] == "2026-04-08T00:00:00Z"  # overdue day 7

    # The clock passing the next milestone on another user's event fires it as well.
    seventh = midnight(due) + 7 * DAY
    step = engine.apply(login(seventh + HOUR, user="other"))
    assert len(step.outputs) == 1
    assert [(f.user_id, f.raised_at, f.overdue_days) for f in flags(step.outputs)] == [
        ("late", seventh, 7)
    ]
    dirty = engine.take_dirty()
    assert dirty.keys() == {"late", "other"}
    assert dirty["late"] == _serialised(engine, "late")


def test_take_dirty_after_eviction_returns_the_bytes_of_the_live_state() -> None:
    small, unbounded = Engine(POLICY, live_users=1), Engine(POLICY)
    drawn = drawdown(T0, "L1", user="u1")
    events = [drawn, score(T0 + HOUR, 700, user="u1"), login(T0 + 2 * HOUR, user="u2")]
    for engine in (small, unbounded):
        for item in events:  # u2's login evicts u1 from the small engine
            engine.apply(item)
    changed = small.take_dirty()
    assert changed == unbounded.take_dirty()
    assert changed["u1"] == _serialised(unbounded, "u1")
    assert small.take_dirty() == {}
    assert small.apply(drawn).duplicate  # a redelivery to a cold user changes nothing
    assert small.take_dirty() == {}


def test_restored_users_beyond_the_bound_stay_cold_and_carry_on_identically() -> None:
    cut = len(HISTORY) // 2
    source = Engine(POLICY)
    for item in HISTORY[:cut]:
        source.apply(item)
    blobs = source.take_dirty()
    assert source.clock is not None
    small, unbounded = Engine(POLICY, live_users=3), Engine(POLICY)
    for engine in (small, unbounded):
        for user_id, blob in blobs.items():
            engine.restore(user_id, blob)
        assert engine.take_dirty() == {}
        assert engine.advance(source.clock) == unbounded.advance(source.clock)
    assert small.live_user_count == 3
    assert small.user_count == len(blobs)
    assert small.deadline_count == source.deadline_count == _scanned_deadlines(small)
    # Restoring over a held user (live or cold) replaces it without miscounting deadlines.
    for user_id in USERS:
        small.restore(user_id, blobs[user_id])
    assert small.deadline_count == source.deadline_count
    outputs = [o for item in HISTORY[cut:] for o in small.apply(item).outputs]
    expected = [o for item in HISTORY[cut:] for o in unbounded.apply(item).outputs]
    assert _dumped(outputs) == _dumped(expected)
    assert small.take_dirty() == unbounded.take_dirty()
    with pytest.raises(StateError):
        small.restore("u0", b"[1, 2")
    assert small.live_user_count <= 3


def test_the_least_recently_used_state_is_the_one_serialised() -> None:
    users = Users(2)
    first, second = users.use("a"), users.use("b")
    assert users.use("a") is first  # a use: "a" is now the most recent
    users.use("c")  # evicts "b", the least recently used
    assert users.live_count == 2
    assert users.use("a") is first  # still live: no deserialisation
    rehydrated = users.use("b")
    assert rehydrated is not second
    assert serialize(rehydrated) == serialize(second)
    assert len(users) == 3


def test_reading_or_firing_a_cold_user_leaves_the_live_set_alone() -> None:
    users = Users(1)
    cold = users.use("cold")
    cold.score = 700
    hot = users.use("hot")  # "cold" is serialised now
    peeked = users.peek("cold")
    assert peeked is not None and peeked.score == 700
    borrowed, was_cold = users.borrow("cold")
    assert was_cold and borrowed.score == 700
    borrowed.score = 710
    users.put_back("cold", borrowed)
    assert users.use("hot") is hot  # neither read nor firing evicted the live user
    assert users.blob("cold") == serialize(borrowed)
    assert users.peek("nobody") is None and users.find("nobody") is None
    assert len(users) == 2
    assert isinstance(users.find("cold"), UserState)  # ``find`` makes it live
    assert users.use("hot") is not hot


def test_the_live_set_must_hold_at_least_one_user() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Engine(POLICY, live_users=0)


def _held_bytes(engine: Engine, events: list[Event]) -> int:
    """Memory the engine holds after taking ``events`` (outputs dropped, events made first).
    Garbage is collected at both ends: what a cycle left uncollected is not held."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for item in events:
            engine.apply(item)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_cold_user_costs_about_its_serialised_size() -> None:
    events = [
        item
        for number in range(600)
        for item in _user_events(random.Random(number), f"m{number}", days=45)
    ]
    events.sort(key=lambda item: item.occurred_at)
    for item in events:  # warm up: imports and the JSON library's caches are not the engine's
        Engine(POLICY, live_users=10).apply(item)
    small, unbounded = Engine(POLICY, live_users=10), Engine(POLICY)
    held_small = _held_bytes(small, events)
    held_unbounded = _held_bytes(unbounded, events)
    blob_bytes = sum(len(blob) for blob in unbounded.take_dirty().values())
    users = small.user_count
    assert users > 500
    # The serialised states themselves, plus the small per-user bookkeeping (map entries,
    # the deadline index, the dirty set) and the few live states.
    assert held_small < blob_bytes + users * 600 + 10 * 20_000
    assert held_unbounded > 2 * held_small
