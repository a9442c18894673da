"""Resident memory per user, and serialised bytes per user, for ordinary users.

A population of ordinary users only (``workers.sim``, mix ``ordinary``) is written once as
JSON lines; then, each in a fresh Python process so that nothing else shares its heap, an
``Engine`` reads the lines one at a time (the input is never held whole) and applies them:

  all live    ``live_users`` = the population: every state a live object
  10% live    ``live_users`` = a tenth of it: the rest held as serialised bytes

Resident memory per user = (resident set after the last event, after a collection) minus
(resident set before the first, after a warm-up on a throwaway engine) over the users.
Serialised bytes per user: the state encoding (``Engine.take_dirty``, the changelog
record) of every user at the end.

    python bench/memory_bench.py [--users 20000] [--days 60] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from machine import current_rss_bytes, peak_rss_bytes

SHARES = {"all_live": 1.0, "tenth_live": 0.1}


def write_population(path: Path, users: int, days: int, seed: int) -> int:
    from workers.sim.generator import SimulationConfig, generate_records

    config = SimulationConfig(users=users, days=days, seed=seed, mix={"ordinary": 1.0})
    count = 0
    with path.open("wb") as out:
        for record in generate_records(config):
            out.write(record.value + b"\n")
            count += 1
    return count


def child(path: Path, users: int, share: float) -> dict[str, Any]:
    """Run in a fresh process: apply the population's lines with ``share`` of users live."""
    from workers.core.engine import Engine
    from workers.core.policy import load_policy
    from workers.decoding import Rejected, decode_event

    live_users = max(1, round(users * share))
    with path.open("rb") as lines:  # warm up: what the first events allocate once for all
        warm = Engine(load_policy())
        for _, line in zip(range(1000), lines, strict=False):
            event = decode_event(line)
            if not isinstance(event, Rejected):
                warm.apply(event)
        del warm
    engine = Engine(load_policy(), live_users=live_users)
    gc.collect()
    before = current_rss_bytes()
    with path.open("rb") as lines:
        for line in lines:
            event = decode_event(line)
            if not isinstance(event, Rejected):
                engine.apply(event)
    gc.collect()
    after = current_rss_bytes()
    counted = engine.user_count
    sizes = sorted(len(blob) for blob in engine.take_dirty().values())
    return {
        "users": counted,
        "live_users_limit": live_users,
        "live_users": engine.live_user_count,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "peak_rss_bytes": peak_rss_bytes(),
        "resident_bytes_per_user": round((after - before) / counted),
        "resident_mb_per_million_users": round((after - before) / counted, 1),
        "serialised_bytes_per_user_mean": round(statistics.fmean(sizes)),
        "serialised_bytes_per_user_median": sizes[len(sizes) // 2],
        "serialised_bytes_per_user_p99": sizes[int(len(sizes) * 0.99)],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lineguard-memory-") as directory:
        path = Path(directory) / "population.jsonl"
        events = write_population(path, args.users, args.days, args.seed)
        runs: dict[str, Any] = {}
        for name, share in SHARES.items():
            command = [sys.executable, __file__, "--child", str(path), "--users", str(args.users)]
            command += ["--share", str(share)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name}: the measuring process failed: {done.stderr[-2000:]}")
            runs[name] = json.loads(done.stdout)
    return {"users": args.users, "days": args.days, "events": events, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--share", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.users, args.share)))
        return
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['users']:,} ordinary users, {report['days']} days, {report['events']:,} events")
    for name, row in report["runs"].items():
        print(
            f"{name}: {row['resident_bytes_per_user']:,} B resident per user "
            f"({row['live_users']:,} live), serialised mean "
            f"{row['serialised_bytes_per_user_mean']:,} B, p99 "
            f"{row['serialised_bytes_per_user_p99']:,} B"
        )


if __name__ == "__main__":
    main()
