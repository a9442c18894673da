"""Per-partition state stores: where users' serialized state rests between restarts.

The changelog topic is the source of truth; a store only saves re-reading it. Each store
remembers the next changelog offset it has not applied, so a restart (or a partition
coming back) replays just the changelog's tail on top of what the store holds.

- ``MemoryStore``: holds nothing but the offset; the engine's memory is the state.
  A new owner replays the whole changelog partition. For tests and the demo.
- ``RocksStore``: users' blobs, each user's pending deadline and waiting count (the
  engine's deadline index), the number of users and the offset in a local RocksDB
  (rocksdict), written in one atomic batch after the changelog records are acknowledged.
  The engine reads a user's blob on demand (``get``); opening a partition reads only the
  deadline index, never the states.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

Pending = Callable[[str], tuple[int | None, int]]
"""A user's pending deadline (microseconds, or None) and waiting events (``Engine.pending``)."""

_USER_PREFIX = b"u:"
_PENDING_PREFIX = b"d:"
_OFFSET_KEY = b"m:changelog-offset"
_COUNT_KEY = b"m:user-count"
_LAYOUT_KEY = b"m:layout"
_LAYOUT = b"2"
"""Layout 2 added the deadline index and the user count; a store without them is rebuilt
from the changelog."""
_PENDING = struct.Struct(">qI")
_MAX_ABSENT = 10_000
_WRITE_BUFFER_BYTES = 8 * 2**20
_NO_DEADLINE = -(2**63)


class PartitionStore(Protocol):
    partition: int

    holds_states: bool
    """Whether the store keeps users' states (the engine may then forget them once saved)."""

    @property
    def changelog_offset(self) -> int:
        """The first changelog offset not yet reflected in this store."""

    @property
    def user_count(self) -> int:
        """Users whose state the store holds (0 for stores that keep no copy)."""

    def get(self, user_id: str) -> bytes | None:
        """A user's saved state, or None for one the store does not hold."""

    def pending(self) -> Iterator[tuple[str, int | None, int]]:
        """(user id, pending deadline, waiting events) of each stored user with either."""

    def snapshot(self) -> Callable[[str], bytes | None] | None:
        """A reader of the states as they are now, unchanged by later writes (None: the
        store holds no states)."""

    def write(
        self,
        records: dict[str, bytes],
        changelog_offset: int,
        pending: Pending,
        *,
        restored: bool = False,
    ) -> None:
        """Save changelog records already acknowledged by the broker, each user's
        ``pending`` deadline and waiting events, and the next offset. ``restored``: the
        records were read back from the changelog (not users the engine asked ``get`` for)."""

    def close(self) -> None: ...


class MemoryStore:
    """Keeps only the changelog position; the engine holds the state."""

    holds_states = False

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._offset = 0

    @property
    def changelog_offset(self) -> int:
        return self._offset

    @property
    def user_count(self) -> int:
        return 0

    def get(self, user_id: str) -> bytes | None:
        return None

    def pending(self) -> Iterator[tuple[str, int | None, int]]:
        return iter(())

    def snapshot(self) -> Callable[[str], bytes | None] | None:
        return None

    def write(
        self,
        records: dict[str, bytes],
        changelog_offset: int,
        pending: Pending,
        *,
        restored: bool = False,
    ) -> None:
        self._offset = max(self._offset, changelog_offset)

    def close(self) -> None:
        return None


class RocksStore:
    """One RocksDB per partition under ``directory``."""

    holds_states = True

    def __init__(self, directory: Path, partition: int) -> None:
        from rocksdict import Rdict

        self.partition = partition
        directory.mkdir(parents=True, exist_ok=True)
        path = str(directory / f"partition-{partition}")
        self._db = Rdict(path, options=_options())
        if self._db.get(_LAYOUT_KEY) != _LAYOUT:
            if self._db.get(_OFFSET_KEY) is not None:
                log.warning(
                    "the store of partition %d predates layout %s; rebuilding it from the "
                    "changelog",
                    partition,
                    _LAYOUT.decode(),
                )
                self._db.close()
                Rdict.destroy(path)
                self._db = Rdict(path, options=_options())
            self._db[_LAYOUT_KEY] = _LAYOUT
        raw = self._db.get(_OFFSET_KEY)
        self._offset = int.from_bytes(raw, "big") if raw else 0
        raw = self._db.get(_COUNT_KEY)
        self._count = int.from_bytes(raw, "big") if raw else 0
        self._absent: set[str] = set()
        """Users ``get`` did not find since the last write: written, they are new. Past
        ``_MAX_ABSENT`` (status queries for unknown users on an idle partition) the set is
        dropped and the next write looks each of its users up instead."""
        self._lookup = False

    @property
    def changelog_offset(self) -> int:
        return self._offset

    @property
    def user_count(self) -> int:
        return self._count

    def get(self, user_id: str) -> bytes | None:
        blob: bytes | None = self._db.get(_USER_PREFIX + user_id.encode())
        if blob is None and not self._lookup:
            if len(self._absent) < _MAX_ABSENT:
                self._absent.add(user_id)
            else:
                self._absent, self._lookup = set(), True
        return blob

    def snapshot(self) -> Callable[[str], bytes | None] | None:
        view = self._db.snapshot()

        def read(user_id: str) -> bytes | None:
            try:
                blob: bytes = view[_USER_PREFIX + user_id.encode()]
            except Exception:  # rocksdict raises a bare Exception for a missing key
                return None
            return blob

        return read

    def pending(self) -> Iterator[tuple[str, int | None, int]]:
        cursor = self._db.iter()
        try:
            cursor.seek(_PENDING_PREFIX)
            while cursor.valid():
                key: bytes = cursor.key()
                if not key.startswith(_PENDING_PREFIX):
                    break
                deadline, waiting = _PENDING.unpack(cursor.value())
                user_id = key[len(_PENDING_PREFIX) :].decode()
                yield user_id, None if deadline == _NO_DEADLINE else deadline, waiting
                cursor.next()
        finally:
            del cursor

    def write(
        self,
        records: dict[str, bytes],
        changelog_offset: int,
        pending: Pending,
        *,
        restored: bool = False,
    ) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        absent, db, new, lookup = self._absent, self._db, 0, restored or self._lookup
        for user_id, blob in records.items():
            key = user_id.encode()
            if lookup:
                new += _USER_PREFIX + key not in db
            else:
                new += user_id in absent
            batch.put(_USER_PREFIX + key, blob)
            deadline, waiting = pending(user_id)
            if deadline is None and not waiting:
                batch.delete(_PENDING_PREFIX + key)
            else:
                at = _NO_DEADLINE if deadline is None else deadline
                batch.put(_PENDING_PREFIX + key, _PENDING.pack(at, waiting))
        offset = max(self._offset, changelog_offset)
        batch.put(_OFFSET_KEY, offset.to_bytes(8, "big"))
        batch.put(_COUNT_KEY, (self._count + new).to_bytes(8, "big"))
        db.write(batch)
        self._offset, self._count = offset, self._count + new
        self._absent, self._lookup = set(), False  # the rest were never created (status queries)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def destroy(directory: Path, partition: int) -> None:
        """Delete a closed partition's database (its log was replaced)."""
        from rocksdict import Rdict

        Rdict.destroy(str(directory / f"partition-{partition}"))


def _options() -> Any:
    """RocksDB's defaults but for the memtables: two of ``_WRITE_BUFFER_BYTES`` at most per
    partition, not two of 64 MiB (with six partitions, 768 MiB of writes held in memory)."""
    from rocksdict import Options

    options = Options(raw_mode=True)
    options.set_write_buffer_size(_WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    return options


def open_store(kind: str, directory: Path, partition: int) -> PartitionStore:
    """The store of one partition: ``memory`` or ``rocksdb``."""
    if kind == "rocksdb":
        return RocksStore(directory, partition)
    return MemoryStore(partition)
