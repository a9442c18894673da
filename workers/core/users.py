"""Users' states, held up to three ways: the recently used ones live, others as serialised
bytes, and, when a loader is given, the rest only in a store that reads them back on demand.

A live ``UserState`` costs several kilobytes of Python objects; its serialised form is
usually under one. ``Users`` keeps at most ``live_limit`` states live, in least-recently-used
order; admitting one more serialises the least recently used into the cold map. Using a cold
user deserialises it (hydrates) and makes it live again. Each user in memory is in exactly
one of the two maps, and a cold user's bytes are exactly ``serialize`` of its state, so they
double as its changelog record.

With a ``loader`` (user id -> the stored bytes, or None for a user never stored), a user in
neither map is read from the store on first use; once the caller has saved every changed
state, ``drop_cold`` forgets the cold bytes, which the store now holds, so memory is bounded
by the live set alone.

Cold bytes are copied into a right-sized object before they are kept: ``orjson.dumps``
returns bytes in an over-allocated buffer (several KB for a state of one or two), which is
fine for a record on its way out but would cost as much as a live state to keep.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from workers.core.state import UserState, deserialize, serialize

Loader = Callable[[str], bytes | None]
"""A user's stored serialised state, or None for a user the store does not hold."""


class Users:
    """A user id -> state map with a bounded number of live states."""

    def __init__(self, live_limit: int, loader: Loader | None = None) -> None:
        if live_limit < 1:
            raise ValueError(f"live_limit must be at least 1, not {live_limit}")
        self.live_limit = live_limit
        self._live: OrderedDict[str, UserState] = OrderedDict()
        self._cold: dict[str, bytes] = {}
        self._loader = loader

    def set_limit(self, live_limit: int) -> None:
        """Change the bound; users over it are held as bytes from now on."""
        if live_limit < 1:
            raise ValueError(f"live_limit must be at least 1, not {live_limit}")
        self.live_limit = live_limit
        live = self._live
        while len(live) > live_limit:
            evicted_id, evicted = live.popitem(last=False)
            self._cold[evicted_id] = _packed(evicted)

    def __len__(self) -> int:
        """Users held in memory, live or as bytes (not those left in the loader's store)."""
        return len(self._live) + len(self._cold)

    @property
    def live_count(self) -> int:
        return len(self._live)

    def drop_cold(self) -> int:
        """Forget the states held as bytes, once the loader's store holds every one of them
        (every changed state saved); returns how many. Without a loader, nothing is dropped."""
        if self._loader is None:
            return 0
        dropped = len(self._cold)
        self._cold = {}
        return dropped

    def use(self, user_id: str) -> UserState:
        """The user's live state, now the most recently used; hydrated or created if need be."""
        live = self._live
        state = live.get(user_id)
        if state is not None:
            live.move_to_end(user_id)
            return state
        blob = self._stored(user_id, self._cold.pop(user_id, None))
        state = UserState() if blob is None else deserialize(blob)
        self._admit(user_id, state)
        return state

    def find(self, user_id: str) -> UserState | None:
        """Like ``use`` for a known user; ``None`` (and nothing created) for an unknown one."""
        if user_id in self._live:
            return self.use(user_id)
        blob = self._stored(user_id, self._cold.pop(user_id, None))
        if blob is None:
            return None
        state = deserialize(blob)
        self._admit(user_id, state)
        return state

    def peek(self, user_id: str) -> UserState | None:
        """The user's state for reading, leaving the live set as it is: a cold or stored
        user's state comes back as a fresh copy that the map does not keep."""
        state = self._live.get(user_id)
        if state is not None:
            return state
        blob = self._stored(user_id, self._cold.get(user_id))
        return None if blob is None else deserialize(blob)

    def borrow(self, user_id: str) -> tuple[UserState, bool]:
        """A known user's state to change without counting as a use (a deadline firing).

        The second value is True when the state was not live: the caller changes a fresh
        copy and hands it back with ``put_back``, so the live set is not disturbed.
        """
        state = self._live.get(user_id)
        if state is not None:
            return state, False
        blob = self._stored(user_id, self._cold.get(user_id))
        if blob is None:
            raise KeyError(user_id)
        return deserialize(blob), True

    def put_back(self, user_id: str, state: UserState) -> None:
        """Store a borrowed cold state again, serialised."""
        self._cold[user_id] = _packed(state)

    def blob(self, user_id: str) -> bytes:
        """A known user's serialised state: a cold user's bytes are already that."""
        state = self._live.get(user_id)
        if state is not None:
            return serialize(state)
        blob = self._stored(user_id, self._cold.get(user_id))
        if blob is None:
            raise KeyError(user_id)
        return blob

    def restore(self, user_id: str, state: UserState, blob: bytes) -> None:
        """Replace a user's state with ``state``, whose serialised form is ``blob``.

        It stays live when the user already was or the live set has room; otherwise the
        bytes are kept cold (restoring is not a use, so nothing is evicted for it).
        """
        live = self._live
        if user_id in live:
            live[user_id] = state
        elif len(live) < self.live_limit:
            self._cold.pop(user_id, None)
            live[user_id] = state
        else:
            self._cold[user_id] = bytes(memoryview(blob))  # the caller's may be over-allocated

    def copy_from(self, other: Users, *, stored: bool) -> None:
        """Hold a copy of ``other``'s states, as bytes. ``stored``: this map's loader reads
        every state ``other`` holds, as it is now (a snapshot of the store taken right after
        every change was saved), so nothing needs copying."""
        if stored:
            return
        cold = self._cold
        for user_id, state in other._live.items():
            cold[user_id] = _packed(state)
        cold.update(other._cold)

    def _stored(self, user_id: str, cold: bytes | None) -> bytes | None:
        """The user's bytes: ``cold`` if held in memory, else what the loader has, if any."""
        if cold is not None or self._loader is None:
            return cold
        return self._loader(user_id)

    def _admit(self, user_id: str, state: UserState) -> None:
        live = self._live
        live[user_id] = state
        if len(live) > self.live_limit:
            evicted_id, evicted = live.popitem(last=False)
            self._cold[evicted_id] = _packed(evicted)


def _packed(state: UserState) -> bytes:
    """``serialize(state)`` in a buffer of its own length (see the module docstring)."""
    return bytes(memoryview(serialize(state)))
