"""What a worker on the RocksDB store holds in memory besides its live users: the deadline
index (every user with a pending deadline, in memory for the whole partition) and each
partition's RocksDB (memtables and block cache), after every user has been written.

    python bench/store_memory.py --users 100000 --partitions 6
"""

from __future__ import annotations

import argparse
import tempfile
import tracemalloc
from pathlib import Path

from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.stream.store import RocksStore

DEADLINE = 1_780_000_000_000_000  # microseconds: June 2026
BLOB = bytes(range(256)) * 5  # 1,280 bytes, about a simulated user's state


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def index_bytes_per_user(users: int) -> float:
    engine = Engine(load_policy(None), live_users=1, loader=lambda user_id: None)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(users):  # the ids too: each is a string of its own, read from the store
        engine.restore_pending(f"u{n:08d}", DEADLINE + n, 0)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / users


def rocksdb_mib(users: int, partitions: int, batch: int = 2_000) -> float:
    directory = Path(tempfile.mkdtemp(prefix="lineguard-store-"))
    stores = [RocksStore(directory, number) for number in range(partitions)]
    before = rss_mib()
    for start in range(0, users, batch):
        for store in stores:
            records = {f"u{store.partition}-{n}": BLOB for n in range(start, start + batch)}
            store.write(records, start + batch, lambda user_id: (DEADLINE, 0))
    grown = rss_mib() - before
    for store in stores:
        store.close()
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="users per partition")
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    print(f"deadline index: {index_bytes_per_user(args.users):.0f} B per user")
    grown = rocksdb_mib(args.users, args.partitions)
    print(
        f"RocksDB, {args.partitions} partitions of {args.users:,} users "
        f"({len(BLOB):,} B each) written: resident memory +{grown:.0f} MiB"
    )


if __name__ == "__main__":
    main()
