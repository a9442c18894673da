"""A store's snapshot reads the states as they were when it was taken (what a challenger
forked from the live engine reads), whatever the live engine saves afterwards."""

from __future__ import annotations

from pathlib import Path

from workers.stream.store import MemoryStore, RocksStore


def _nothing_pending(user_id: str) -> tuple[int | None, int]:
    return None, 0


def test_a_rocksdb_snapshot_is_unchanged_by_later_writes(tmp_path: Path) -> None:
    store = RocksStore(tmp_path, 0)
    store.write({"a": b"a-1", "b": b"b-1"}, 10, _nothing_pending)
    read = store.snapshot()
    assert read is not None
    store.write({"a": b"a-2", "c": b"c-1"}, 11, _nothing_pending)
    assert [read(user) for user in ("a", "b", "c")] == [b"a-1", b"b-1", None]
    assert [store.get(user) for user in ("a", "b", "c")] == [b"a-2", b"b-1", b"c-1"]
    store.close()


def test_a_memory_store_has_no_states_to_read() -> None:
    assert MemoryStore(0).snapshot() is None
