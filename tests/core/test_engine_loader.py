"""An engine over a store that holds users' states (the worker's RocksDB store, here a dict):
it forgets what it saved beyond its live set, reads a state back on first use, reopens from
the deadline index alone, and decides exactly as an engine that holds everyone."""

from __future__ import annotations

import pytest

from tests.core.scenario import POLICY
from tests.core.test_engine_memory import END, HISTORY, USERS
from workers.core.engine import Engine
from workers.core.state import serialize
from workers.core.users import Users


class DictStore:
    """Saved states and each user's pending deadline and waiting count; reads counted."""

    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}
        self.pending: dict[str, tuple[int | None, int]] = {}
        self.reads = 0

    def get(self, user_id: str) -> bytes | None:
        blob = self.states.get(user_id)
        self.reads += blob is not None
        return blob

    def save(self, engine: Engine) -> None:
        """What the worker does after a batch's changelog records are acknowledged."""
        for user_id, blob in engine.take_dirty().items():
            self.states[user_id] = blob
            self.pending[user_id] = engine.pending(user_id)
        engine.drop_cold()

    def open(self, live_users: int) -> Engine:
        """A restarted engine: the deadline index only, every state left in the store."""
        engine = Engine(POLICY, live_users=live_users, loader=self.get)
        for user_id, (deadline, waiting) in self.pending.items():
            if deadline is not None or waiting:
                engine.restore_pending(user_id, deadline, waiting)
        return engine


@pytest.mark.parametrize("live_users", [1, 3])
def test_an_engine_over_a_store_decides_as_one_that_holds_everyone(live_users: int) -> None:
    store, unbounded = DictStore(), Engine(POLICY)
    engine = store.open(live_users)
    restart = len(HISTORY) // 2
    outputs, expected = [], []
    for start in range(0, len(HISTORY), 25):  # batches of 25 events, saved after each
        if start == restart - restart % 25:
            clock = engine.clock
            engine, store.reads = store.open(live_users), 0
            assert engine.user_count == 0 and store.reads == 0  # nothing read to reopen
            assert engine.deadline_count == unbounded.deadline_count
            assert clock is not None
            outputs.extend(engine.advance(clock))  # back where it was: late events count alike
        for item in HISTORY[start : start + 25]:
            outputs.extend(engine.apply(item).outputs)
            expected.extend(unbounded.apply(item).outputs)
        store.save(engine)
        assert engine.user_count <= live_users  # the rest are only in the store
        assert engine.live_user_count <= live_users
    assert store.reads > 0
    outputs.extend(engine.advance(END, final=True))
    expected.extend(unbounded.advance(END, final=True))
    store.save(engine)
    assert [o.model_dump_json() for o in outputs] == [o.model_dump_json() for o in expected]
    for user_id in USERS:
        state = unbounded.state_of(user_id)
        assert state is not None and store.states[user_id] == serialize(state)
        assert engine.status(user_id) == unbounded.status(user_id)
    assert engine.user_count <= live_users  # status reads a stored user without keeping it


def test_a_user_unknown_to_the_store_is_created_and_an_unknown_one_is_not_served() -> None:
    store = DictStore()
    users = Users(1, loader=store.get)
    assert users.peek("nobody") is None and users.find("nobody") is None
    users.use("a").score = 700
    users.use("b")  # "a" is held as bytes until they are saved
    store.states["a"] = users.blob("a")
    assert users.drop_cold() == 1 and len(users) == 1
    state, stored = users.borrow("a")
    assert stored and state.score == 700 and store.reads == 1
    with pytest.raises(KeyError):
        users.borrow("nobody")
    assert users.use("a").score == 700 and store.reads == 2


def test_without_a_loader_nothing_held_as_bytes_is_dropped() -> None:
    users = Users(1)
    users.use("a")
    users.use("b")
    assert users.drop_cold() == 0 and len(users) == 2
