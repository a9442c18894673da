"""Fuzz the worker's decode step at volume: cases per second and what became of them.

Cases (deterministic for a seed): a quarter arbitrary bytes, a quarter valid events with
bytes flipped or deleted, half valid events with fields dropped, replaced by random JSON
or added, under the right key most of the time, each decoded with
``workers.codec.decode`` (the worker's full edge: JSON, contract, topic, key and the
partition guard), half of them as if on the right topic and partition, half on a random
one. An exception out of decode is
counted as ``RAISED`` and makes the exit status 1.

    python bench/fuzz_decode.py --cases 200000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import traceback
from collections import Counter
from typing import Any

from schemas.events import EVENT_TYPES
from schemas.samples import SAMPLE_BODIES
from workers.codec import Placement, Rejected, decode
from workers.stream.routing import partition_for

AT = "2026-03-02T08:00:00Z"
PARTITIONS = 6
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 10**30, 1e308, float("nan"), "", "x" * 300, "1970-01-01T00:00:00Z",
    "2101-01-01T00:00:00Z", "2026-03-02", "12.505", [], {}, [1, [2, [3]]], {"a": {"b": None}},
    "login", "\u0000", "\u202e", "😀",
]  # fmt: skip


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.1:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.2:
        return {
            f"k{rng.randint(0, 9)}": random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))
        }
    if roll < 0.5:
        return rng.choice(ODD_VALUES)
    if roll < 0.7:
        return rng.randint(-(2**63), 2**63)
    return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 12)))


Case = tuple[bytes, bytes | None, str | None, int]
"""(value, key, the source topic's event type, the partition it arrived on)"""


def case(rng: random.Random, n: int) -> Case:
    """One case; half the time on the right topic and partition, so that mutations reach
    every check."""
    user_id = f"user-{n % 997}"
    body = {"event_id": f"e{n}", "user_id": user_id, "occurred_at": AT}
    seed = rng.choice(SAMPLE_BODIES)
    body.update(seed)
    value, key = mutate(rng, body)
    if rng.random() < 0.5:
        return value, key, seed["type"], partition_for(user_id, PARTITIONS)
    return value, key, rng.choice([None, *EVENT_TYPES]), rng.randrange(PARTITIONS)


def mutate(rng: random.Random, body: dict[str, Any]) -> tuple[bytes, bytes | None]:
    key: bytes | None = str(body["user_id"]).encode()
    roll = rng.random()
    if roll < 0.25:
        return rng.randbytes(rng.randint(0, 512)), key
    if roll < 0.5:
        raw = bytearray(json.dumps(body).encode())
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(raw))
            if rng.random() < 0.5:
                raw[position] = rng.randint(0, 255)
            else:
                del raw[position]
        return bytes(raw), key
    for _ in range(rng.randint(0, 3)):
        name = rng.choice([*body, "extra", "schema_version"])
        if rng.random() < 0.3:
            body.pop(name, None)
        else:
            body[name] = random_json(rng)
    if rng.random() < 0.1:
        key = rng.choice([None, b"", b"someone-else", rng.randbytes(8)])
    return json.dumps(body).encode(), key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    first_raise = ""
    seconds, done, chunk = 0.0, 0, 10_000
    while done < args.cases:
        size = min(chunk, args.cases - done)
        cases = [case(rng, done + i) for i in range(size)]
        started = time.process_time()
        for value, key, expected, partition in cases:
            try:
                result = decode(value, key, expected, Placement(partition, PARTITIONS))
            except Exception:
                outcomes["RAISED"] += 1
                first_raise = first_raise or f"{value[:200]!r}\n{traceback.format_exc()}"
                continue
            outcomes[result.error_kind if isinstance(result, Rejected) else "decoded"] += 1
        seconds += time.process_time() - started
        done += size

    if args.json:
        report = {"cases": done, "seconds": round(seconds, 3), "cases_per_s": round(done / seconds)}
        print(json.dumps({**report, "outcomes": dict(outcomes.most_common())}, indent=2))
    else:
        print(f"Python {platform.python_version()} on {platform.machine()}, seed {args.seed}")
        rate = f"{done / seconds:,.0f}"
        print(f"\n{done:,} cases in {seconds:.2f} CPU s of decode: **{rate} cases/s**\n")
        print("| outcome | cases | share |\n|---|---|---|")
        for outcome, count in outcomes.most_common():
            print(f"| {outcome} | {count:,} | {count / done:.1%} |")
    if first_raise:
        print(f"\nFIRST EXCEPTION:\n{first_raise}", file=sys.stderr)
    return 1 if outcomes["RAISED"] else 0


if __name__ == "__main__":
    sys.exit(main())
