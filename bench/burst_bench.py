"""A billing-day burst: N users whose installments all fall due on one day.

Every user drew a loan and was billed one installment due on the same day; none pays. At
the first overdue milestone (the day after) every user's deadline falls due at the same
instant and raises one ``OVERDUE`` flag. The engine holds the users as a worker partition
restored from its changelog would (``Engine.restore``; the first ``LINEGUARD_LIVE_USERS``
live, the rest as bytes), and the burst is fired two ways, CPU time of one core:

  at once    ``Engine.advance`` past the deadline: every deadline in one call, each flag
             encoded to its wire JSON
  in slices  ``Engine.advance_due(limit=LINEGUARD_DEADLINE_SLICE)`` until nothing is due,
             as the worker does once per batch: each slice's flags encoded and its changed
             users' states serialised (the changelog records the worker writes per batch);
             the longest slice is how long a partition waits for input meanwhile

    python bench/burst_bench.py [--users 200000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.outputs import Flag
from workers.codec import encode_output
from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.core.state import serialize
from workers.decoding import Rejected, decode_event
from workers.settings import Settings

DUE = datetime(2026, 3, 1, tzinfo=UTC)


def template_blob() -> bytes:
    """One user's state: a loan drawn, one installment billed and due on ``DUE``, unpaid."""
    engine = Engine(load_policy())
    events = [
        {
            "event_id": "e1",
            "type": "transaction",
            "kind": "loan_drawdown",
            "amount": "1200.00",
            "loan_id": "loan-1",
            "term_months": 3,
            "occurred_at": "2026-02-01T10:00:00Z",
        },
        {
            "event_id": "e2",
            "type": "repayment",
            "kind": "installment_due",
            "loan_id": "loan-1",
            "product": "jiebei",
            "installment": 1,
            "due_date": DUE.date().isoformat(),
            "amount": "400.00",
            "occurred_at": "2026-02-20T10:00:00Z",
        },
    ]
    for body in events:
        event = decode_event(orjson.dumps({**body, "user_id": "template"}))
        assert not isinstance(event, Rejected), event
        engine.apply(event)
    state = engine.state_of("template")
    assert state is not None and state.next_deadline is not None
    return serialize(state)


def loaded_engine(users: int, live_users: int, blob: bytes) -> Engine:
    engine = Engine(load_policy(), live_users=live_users)
    for index in range(users):
        engine.restore(f"b{index:08d}", blob)
    return engine


def at_once(users: int, live_users: int, blob: bytes, fire_at: datetime) -> dict[str, Any]:
    engine = loaded_engine(users, live_users, blob)
    gc.collect()
    started = time.process_time()
    outputs = engine.advance(fire_at)
    written = sum(len(encode_output(output)) for output in outputs)
    seconds = time.process_time() - started
    flags = sum(isinstance(output, Flag) for output in outputs)
    return {
        "flags": flags,
        "seconds": round(seconds, 3),
        "flags_per_s": round(flags / seconds),
        "seconds_per_million": round(seconds * 1e6 / max(flags, 1), 2),
        "bytes_written": written,
    }


def in_slices(
    users: int, live_users: int, blob: bytes, fire_at: datetime, limit: int
) -> dict[str, Any]:
    engine = loaded_engine(users, live_users, blob)
    engine.advance_due(fire_at, 0)  # the clock reaches the burst; nothing fires yet
    engine.take_dirty()
    gc.collect()
    flags = slices = changelog_bytes = 0
    longest = 0.0
    started = time.process_time()
    while engine.has_due():
        slice_started = time.process_time()
        outputs = engine.advance_due(None, limit)
        for output in outputs:
            encode_output(output)
        changelog_bytes += sum(len(record) for record in engine.take_dirty().values())
        longest = max(longest, time.process_time() - slice_started)
        flags += sum(isinstance(output, Flag) for output in outputs)
        slices += 1
    seconds = time.process_time() - started
    return {
        "flags": flags,
        "slices": slices,
        "slice_limit": limit,
        "seconds": round(seconds, 3),
        "flags_per_s": round(flags / seconds),
        "seconds_per_million": round(seconds * 1e6 / max(flags, 1), 2),
        "longest_slice_seconds": round(longest, 4),
        "changelog_bytes": changelog_bytes,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    live_users = args.live_users or settings.live_users
    limit = args.slice or settings.deadline_slice
    blob = template_blob()
    fire_at = DUE + timedelta(days=2)
    return {
        "users": args.users,
        "live_users": live_users,
        "template_state_bytes": len(blob),
        "at_once": at_once(args.users, live_users, blob, fire_at),
        "in_slices": in_slices(args.users, live_users, blob, fire_at, limit),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument(
        "--live-users", type=int, default=0, help="0: the setting LINEGUARD_LIVE_USERS"
    )
    parser.add_argument(
        "--slice", type=int, default=0, help="0: the setting LINEGUARD_DEADLINE_SLICE"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    once, sliced = report["at_once"], report["in_slices"]
    print(f"{report['users']:,} users, {report['live_users']:,} live")
    print(f"at once: {once['flags']:,} flags in {once['seconds']} s, {once['flags_per_s']:,}/s")
    print(
        f"in slices of {sliced['slice_limit']:,}: {sliced['flags']:,} flags in "
        f"{sliced['seconds']} s ({sliced['slices']} slices, longest "
        f"{sliced['longest_slice_seconds']} s), {sliced['flags_per_s']:,}/s"
    )


if __name__ == "__main__":
    main()
