"""``lineguard evaluate``: score a policy (or two, side by side) against a labelled population.

    lineguard evaluate --events events.jsonl --labels labels.jsonl \\
        --until 2026-06-30T00:00:00Z --report reports/default \\
        [--policy P.toml] [--compare-policy P2.toml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workers.core.policy import load_policy
from workers.errors import InputError, LineguardError
from workers.replay import Counts, parse_moment
from workers.sim.evaluate import compare, file_events, read_labels, run_policies, score
from workers.sim.report import Run, archetype_counts, percent, write_report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=Path, required=True, help="JSON-lines events")
    parser.add_argument("--labels", type=Path, required=True, help="labels from `simulate`")
    parser.add_argument("--policy", type=Path, help="policy TOML (default: the packaged policy)")
    parser.add_argument(
        "--compare-policy", type=Path, help="a second policy TOML to compare side by side"
    )
    parser.add_argument(
        "--until",
        type=parse_moment,
        required=True,
        help="advance the clock to this time at the end (the end of the simulated span)",
    )
    parser.add_argument("--report", type=Path, required=True, help="directory for the report")


def run(args: argparse.Namespace) -> int:
    try:
        started = time.monotonic()
        policies = [load_policy(args.policy)]
        if args.compare_policy is not None:
            policies.append(load_policy(args.compare_policy))
            if policies[1].version == policies[0].version:
                raise InputError("the two policies share a version; give the changed one its own")
        if not args.events.is_file():
            raise InputError(f"cannot read {args.events}: no such file")
        labels = read_labels(args.labels)
        counts = Counts()
        outcomes = run_policies(file_events(args.events, counts), policies, args.until, counts)
        scores = [score(labels, outcome) for outcome in outcomes]
        comparison = compare(labels, *outcomes) if len(outcomes) == 2 else None
        facts = Run(
            events_path=str(args.events),
            labels_path=str(args.labels),
            events=counts.events,
            duplicates=counts.duplicates,
            rejected=counts.rejected,
            until=args.until,
            archetypes=archetype_counts(labels),
        )
        path = write_report(args.report, facts, scores, comparison)
    except LineguardError as exc:
        print(f"lineguard evaluate: {exc}", file=sys.stderr)
        return 1
    for each in scores:
        closed = len(each.outcome.first_close)
        print(
            f"{each.outcome.version}: {closed:,} users closed, "
            f"{len(each.false_closures):,} of them labelled ordinary; recall "
            + ", ".join(f"{code} {percent(s.recall)}" for code, s in each.per_reason.items()),
            file=sys.stderr,
        )
    print(f"report: {path} ({time.monotonic() - started:,.1f}s)", file=sys.stderr)
    return 0
