"""Instructions the decision core executes per event, counted by valgrind, for code trees
side by side: a comparison that a busy machine cannot blur, unlike CPU time.

For each tree (this checkout, and every ``--against`` directory: another checkout, or
``git archive COMMIT | tar -x -C DIR``), two child processes run the same input under
``valgrind --tool=cachegrind`` with ``PYTHONHASHSEED=0``: one decodes the lines and applies
them to an ``Engine`` (then advances its clock to the last event and encodes every output),
one only decodes them. The difference of their instruction counts, divided by the events,
is what the core costs per event in that tree. Instruction counts are not time (a cache
miss costs more than an add), but between two versions of the same Python code they move
with it, and they repeat to a fraction of a percent.

    python bench/core_instructions.py --stream simulated --events 20000 --against /tmp/old

Needs valgrind (``apt-get install valgrind``); about a minute per tree and stream at 20,000
events.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from streams import simulated, stress

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from datetime import datetime

import orjson

from workers.codec import encode_output
from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.decoding import Rejected, decode_event

lines = open(sys.argv[1], "rb").read().splitlines()
events = [event for event in map(decode_event, lines) if not isinstance(event, Rejected)]
if sys.argv[2] == "apply":
    engine = Engine(load_policy(), live_users=10_000_000)
    for event in events:
        for output in engine.apply(event).outputs:
            encode_output(output)
    last = orjson.loads(lines[-1])["occurred_at"].replace("Z", "+00:00")
    for output in engine.advance(datetime.fromisoformat(last), final=True):
        encode_output(output)
"""


def instructions(tree: Path, lines: Path, mode: str) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            CHILD,
            str(lines),
            mode,
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", choices=("simulated", "stress"), default="simulated")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--against", type=Path, action="append", default=[], help="another tree (repeatable)"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.stream == "simulated":
        lines = simulated(max(1, args.events // 80), 180, args.seed)[: args.events]
    else:
        lines = stress(args.events, max(1, args.events // 10), args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "events.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        rows = []
        for tree in [ROOT, *args.against]:
            spent = instructions(tree, path, "apply") - instructions(tree, path, "decode")
            rows.append((tree, spent / len(lines)))
    print(f"{args.stream} stream, {len(lines):,} events, seed {args.seed}")
    print("| tree | core instructions per event | over this checkout |")
    print("|---|---|---|")
    for tree, per_event in rows:
        print(f"| {tree} | {per_event:,.0f} | {per_event / rows[0][1]:.3f} |")


if __name__ == "__main__":
    main()
