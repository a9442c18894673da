"""Per-partition state stores: where users' serialized state rests between restarts.

The changelog topic is the source of truth; a store only saves re-reading it. Each store
remembers the next changelog offset it has not applied, so a restart (or a partition
coming back) replays just the changelog's tail on top of what the store holds.

- ``MemoryStore``: holds nothing but the offset; the engine's live state is the state.
  A new owner replays the whole changelog partition. For tests and the demo.
- ``RocksStore``: users' blobs and the offset in a local RocksDB (rocksdict), written in
  one atomic batch after the changelog records are acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_USER_PREFIX = b"u:"
_OFFSET_KEY = b"m:changelog-offset"


class PartitionStore(Protocol):
    partition: int

    @property
    def changelog_offset(self) -> int:
        """The first changelog offset not yet reflected in this store."""

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Every stored user's blob (empty for stores that keep no copy)."""

    def write(self, records: dict[str, bytes], changelog_offset: int) -> None:
        """Save changelog records already acknowledged by the broker, and the next offset."""

    def close(self) -> None: ...


class MemoryStore:
    """Keeps only the changelog position; the engine holds the state."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._offset = 0

    @property
    def changelog_offset(self) -> int:
        return self._offset

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(())

    def write(self, records: dict[str, bytes], changelog_offset: int) -> None:
        self._offset = max(self._offset, changelog_offset)

    def close(self) -> None:
        return None


class RocksStore:
    """One RocksDB per partition under ``directory``."""

    def __init__(self, directory: Path, partition: int) -> None:
        from rocksdict import Options, Rdict

        self.partition = partition
        directory.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(directory / f"partition-{partition}"), options=Options(raw_mode=True))
        raw = self._db.get(_OFFSET_KEY)
        self._offset = int.from_bytes(raw, "big") if raw else 0

    @property
    def changelog_offset(self) -> int:
        return self._offset

    def items(self) -> Iterator[tuple[str, bytes]]:
        cursor = self._db.iter()
        try:
            cursor.seek(_USER_PREFIX)
            while cursor.valid():
                key: bytes = cursor.key()
                if not key.startswith(_USER_PREFIX):
                    break
                yield key[len(_USER_PREFIX) :].decode(), cursor.value()
                cursor.next()
        finally:
            del cursor

    def write(self, records: dict[str, bytes], changelog_offset: int) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for user_id, blob in records.items():
            batch.put(_USER_PREFIX + user_id.encode(), blob)
        self._offset = max(self._offset, changelog_offset)
        batch.put(_OFFSET_KEY, self._offset.to_bytes(8, "big"))
        self._db.write(batch)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def destroy(directory: Path, partition: int) -> None:
        """Delete a closed partition's database (its log was replaced)."""
        from rocksdict import Rdict

        Rdict.destroy(str(directory / f"partition-{partition}"))


def open_store(kind: str, directory: Path, partition: int) -> PartitionStore:
    """The store of one partition: ``memory`` or ``rocksdb``."""
    if kind == "rocksdb":
        return RocksStore(directory, partition)
    return MemoryStore(partition)
