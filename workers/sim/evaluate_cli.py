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
from workers.errors import InputError
from workers.inputs import sources
from workers.problems import Problem
from workers.progress import add_option as add_progress_option
from workers.progress import meter, wanted
from workers.replay import Counts, parse_moment
from workers.sim.evaluate import (
    compare,
    file_events,
    overlap_warning,
    read_labels,
    run_policies,
    score,
    users_seen,
)
from workers.sim.report import Run, archetype_counts, percent, write_report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        type=Path,
        required=True,
        help="JSON-lines events ('-': standard input; gzip is read transparently)",
    )
    parser.add_argument(
        "--labels", type=Path, required=True, help="labels from `simulate` (gzip too)"
    )
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

    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    policies = [load_policy(args.policy)]
    if args.compare_policy is not None:
        policies.append(load_policy(args.compare_policy))
        if policies[1].version == policies[0].version:
            raise Problem("the two policies share a version; give the changed one its own")
    if args.report.exists() and not args.report.is_dir():
        raise Problem(f"--report {args.report}: is a file; give a directory for the report")
    events_source, labels_source = sources([args.events, args.labels])
    labels = read_labels(labels_source)
    counts = Counts()
    seen: set[str] = set()
    with meter("evaluate", events_source.size, wanted(args.progress)) as bar:
        events = users_seen(file_events(events_source, counts, bar), seen)
        outcomes = run_policies(events, policies, args.until, counts)
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
    try:
        path = write_report(args.report, facts, scores, comparison)
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {args.report}: {exc.strerror or exc}"
        ) from exc
    warning = overlap_warning(labels, seen)
    if warning is not None:
        print(f"lineguard evaluate: warning: {warning}", file=sys.stderr)
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
