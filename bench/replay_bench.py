"""Replay throughput of the decision core on one core, and state bytes per user.

Generates a deterministic mixed stream (all six event types, bills and repayments, a few
risky users) as JSON lines, then measures in one run:
  decode only          JSON bytes -> validated events (pydantic), no decisions
  decode + decide      what `lineguard replay` does per line (decode, Engine.apply)
  decide only          Engine.apply over already-decoded events
and the serialised state size per user.

    python bench/replay_bench.py --events 1000000 --users 50000
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.decoding import Rejected, decode_event

START = datetime(2026, 1, 1, tzinfo=UTC)


def stream(events: int, users: int, seed: int) -> Iterator[bytes]:
    """Time-ordered synthetic events: a day's traffic at a time, skewed over users."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(users)]
    per_day = max(1, events // 180)
    produced = 0
    day = 0
    loans: dict[int, int] = {}
    bills: dict[int, int] = {}
    unpaid: set[int] = set()
    while produced < events:
        base = START + timedelta(days=day)
        chosen = rng.choices(range(users), weights=weights, k=min(per_day, events - produced))
        seconds = sorted(rng.randrange(86400) for _ in chosen)
        for user, second in zip(chosen, seconds, strict=True):
            at = (base + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
            produced += 1
            if user in unpaid:
                # Most bills are paid on time: the user's next event settles the last bill.
                unpaid.discard(user)
                record = _event(rng, f"user-{user}", user, at, produced, loans, bills, base, 0.9)
            else:
                record = _event(rng, f"user-{user}", user, at, produced, loans, bills, base)
                if record.get("kind") == "installment_due":
                    unpaid.add(user)
            yield orjson.dumps(record)
        day += 1


def _event(
    rng: random.Random,
    user_id: str,
    user: int,
    at: str,
    serial: int,
    loans: dict[int, int],
    bills: dict[int, int],
    day: datetime,
    roll: float | None = None,
) -> dict[str, object]:
    common: dict[str, object] = {"event_id": f"ev-{serial}", "user_id": user_id, "occurred_at": at}
    roll = rng.random() if roll is None else roll
    if roll < 0.45:
        device = f"dev-{user}-{rng.randrange(2)}"
        return {**common, "type": "login", "device_id": device, "ip": "10.0.0.1"}
    if roll < 0.70:
        kind = rng.choice(["purchase", "transfer_in", "refund", "purchase"])
        amount = f"{rng.randrange(1, 50000) / 100:.2f}"
        return {**common, "type": "transaction", "kind": kind, "amount": amount}
    if roll < 0.78:
        loans[user] = loans.get(user, 0) + 1
        bills.pop(user, None)
        return {
            **common,
            "type": "transaction",
            "kind": "loan_drawdown",
            "amount": f"{rng.randrange(500, 20000)}",
            "loan_id": f"L-{user}-{loans[user]}",
            "term_months": rng.choice([3, 6, 12]),
        }
    if roll < 0.86 and user in loans:
        bills[user] = bills.get(user, 0) + 1
        due = (day + timedelta(days=10)).date().isoformat()
        return {
            **common,
            "type": "repayment",
            "kind": "installment_due",
            "loan_id": f"L-{user}-{loans[user]}",
            "product": "jiebei",
            "installment": bills[user],
            "due_date": due,
            "amount": "300.00",
        }
    if roll < 0.94 and user in bills:
        return {
            **common,
            "type": "repayment",
            "kind": "repayment",
            "loan_id": f"L-{user}-{loans[user]}",
            "product": "jiebei",
            "installment": bills[user],
            "amount": "300.00",
        }
    if roll < 0.97:
        return {**common, "type": "device_change", "device_id": f"dev-{user}-{rng.randrange(3)}"}
    if roll < 0.985:
        action = rng.choice(["bind", "unbind"])
        return {**common, "type": "bank_card_change", "action": action, "card_id": f"c-{user}"}
    score = rng.randrange(560, 800)
    return {**common, "type": "profile_change", "field": "credit_score", "credit_score": score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    lines = list(stream(args.events, args.users, args.seed))
    size_mb = sum(len(line) for line in lines) / 1e6
    print(f"python {platform.python_version()} on {platform.machine()}, one core")
    print(f"generated {len(lines):,} events ({size_mb:.0f} MB JSON) over {args.users:,} users")

    started = time.process_time()
    decoded = [decode_event(line) for line in lines]
    decode_s = time.process_time() - started
    events = [event for event in decoded if not isinstance(event, Rejected)]
    assert len(events) == len(lines), "the generator produced an invalid event"

    policy = load_policy()
    engine = Engine(policy)
    outputs = 0
    started = time.process_time()
    for event in events:
        outputs += len(engine.apply(event).outputs)
    decide_s = time.process_time() - started

    engine = Engine(policy)
    started = time.process_time()
    for line in lines:
        event = decode_event(line)
        if not isinstance(event, Rejected):
            engine.apply(event)
    both_s = time.process_time() - started

    blobs = engine.take_dirty()
    sizes = sorted(len(blob) for blob in blobs.values())
    n = len(lines)
    print()
    print("| path | CPU seconds | events/s |")
    print("|---|---|---|")
    print(f"| decode only (JSON -> pydantic event) | {decode_s:.2f} | {n / decode_s:,.0f} |")
    print(f"| decide only (Engine.apply) | {decide_s:.2f} | {n / decide_s:,.0f} |")
    print(f"| decode + decide (what replay does) | {both_s:.2f} | {n / both_s:,.0f} |")
    print()
    print(f"outputs (flags + decisions): {outputs:,}")
    print(
        f"state bytes per user over {len(sizes):,} users: mean {statistics.fmean(sizes):,.0f}, "
        f"median {sizes[len(sizes) // 2]:,}, p99 {sizes[int(len(sizes) * 0.99)]:,}, "
        f"max {sizes[-1]:,}"
    )
    print(f"decide share of decode + decide: {decide_s / both_s:.0%}")


if __name__ == "__main__":
    main()
